"""A marketer sets where a segment's clips take place, on the campaign page, in English and in
Traditional Chinese: suggested settings carry a visible marker, an edited one becomes the
marketer's. Screenshots: test-artifacts/screenshots/15-segment-settings-en.png and
16-segment-settings-zh-hant.png."""
import pytest
from playwright.sync_api import expect

from campaigns.models import Membership, Segment
from tests import factories
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_edit_a_segments_setting_in_english_and_chinese(page, member, shoot):
    user = member(Membership.Role.MARKETER, username="maya")
    organization = user.memberships.get().organization
    campaign = factories.CampaignFactory(brand__organization=organization, name="Weekend trails", camera="pan_left")
    factories.SegmentFactory(campaign=campaign, name="Weekend hikers", position=0,
                             setting="a mountain forest trail at dawn", setting_source="marketer")
    commuters = factories.SegmentFactory(campaign=campaign, name="城市通勤族", position=1,
                                         attributes={"interests": ["通勤", "咖啡"]},
                                         setting="a city street at night", setting_source="suggested")
    runners = factories.SegmentFactory(campaign=campaign, name="Trail runners", position=2,
                                       attributes={"interests": ["running"]},
                                       setting="a red rock canyon at sunset", setting_source="suggested")

    sign_in(page, user)
    # The new-campaign form: a camera select, and a setting in every segment row, added ones too.
    page.goto("/campaigns/new/")
    expect(page.get_by_label("Camera move").locator("option")).to_have_count(1 + 6)
    page.get_by_role("button", name="+ Add segment").click()
    expect(page.locator("#seg-setting-3")).to_have_value("")
    expect(page.get_by_label("Setting (optional)")).to_have_count(3)

    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator(".page-head .sub")).to_contain_text("camera: Pan left")
    hikers_block = page.locator(".segment", has_text="Weekend hikers")
    commuters_block = page.locator(f"#segment-{commuters.pk}")
    expect(hikers_block.locator("[data-setting-text]")).to_have_text("a mountain forest trail at dawn")
    expect(hikers_block.locator(".pill.suggested")).to_have_count(0)
    expect(commuters_block.locator(".pill.suggested")).to_have_text("suggested")
    expect(page.locator(".pill.suggested")).to_have_count(2)

    # English: the commuters get the marketer's own setting; the marker goes.
    commuters_block.get_by_label("Setting of 城市通勤族").fill("a rainy city street at dawn")
    commuters_block.get_by_role("button", name="Save setting").click()
    commuters_block = page.locator(f"#segment-{commuters.pk}")
    expect(commuters_block.locator("[data-setting-text]")).to_have_text("a rainy city street at dawn")
    expect(commuters_block.locator(".pill.suggested")).to_have_count(0)
    expect(page.locator(".msg").first).to_contain_text("now takes place in: a rainy city street at dawn")
    expect(page.locator(".pill.suggested")).to_have_count(1)
    shoot(page, "15-segment-settings-en")
    commuters.refresh_from_db()
    assert (commuters.setting, commuters.setting_source) == ("a rainy city street at dawn", "marketer")

    # Traditional Chinese: the marker and the form speak it, and an edit works the same way.
    page.get_by_label("Language").select_option("zh-hant")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(page.locator(".page-head .sub")).to_contain_text("鏡頭: 向左平移")
    runners_block = page.locator(f"#segment-{runners.pk}")
    expect(runners_block.locator(".pill.suggested")).to_have_text("建議")
    runners_block.get_by_label("Trail runners 的場景").fill("a snowy mountain slope")
    runners_block.get_by_role("button", name="儲存場景").click()
    runners_block = page.locator(f"#segment-{runners.pk}")
    expect(runners_block.locator("[data-setting-text]")).to_have_text("a snowy mountain slope")
    expect(page.locator(".pill.suggested")).to_have_count(0)
    expect(page.locator(".msg").first).to_contain_text("「Trail runners」的場景現在是：a snowy mountain slope")
    shoot(page, "16-segment-settings-zh-hant")
    assert list(Segment.objects.filter(campaign=campaign).values_list("setting_source", flat=True)) == [
        "marketer", "marketer", "marketer"]
