"""Recipients end to end in Chromium: a marketer uploads a CSV on the campaign page (a bad row is
listed with its line), downloads the links, and every good row's page opens on a phone, without a
login, plays its clip with its poster in the brand's colours, speaks Traditional Chinese to a zh-TW
recipient, and its call to action records a click and lands on the campaign's cta_url. A revoked
link is a plain 404. Screenshots: test-artifacts/screenshots/40-recipient-page-phone-zh-hant.png,
41-recipient-page-phone-en.png, 42-campaign-recipients.png."""
import csv
import io
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Campaign, Clip, Event, Job, Membership
from campaigns.services.recipients import recipients_import_run
from campaigns.services.segmentation import segments_embed
from campaigns.services.serving import signed_urls_forget
from tests.browser.conftest import sign_in
from tests.helpers import stored_clip

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
CSV_TEXT = (
    "external_id,interests,style,locale\n"
    "mei-lin,hiking;camping,rugged,zh-TW\n"
    "sam,video games;esports,neon,en\n"
    "jo,hiking;mountains,outdoor,\n"  # no locale: the browser's language
    "not valid!,hiking,rugged,en\n"
)


def _clip(campaign, segment, colour) -> Clip:
    """An approved clip whose MP4 and poster really are in storage: a square moving over a gradient."""
    frames = np.zeros((16, 240, 240, 3), dtype=np.uint8)
    frames[..., 2] = np.linspace(40, 200, 240, dtype=np.uint8)[None, :, None]
    for i in range(16):
        frames[i, 90:150, 10 + i * 12:70 + i * 12] = colour
    return stored_clip(campaign, segment=segment, status=Clip.Status.APPROVED, frames=frames)


def test_csv_in_links_out_and_every_page_plays_on_a_phone(page, chromium, live_server, member, shoot):
    signed_urls_forget()
    user = member(Membership.Role.MARKETER, username="maya")
    organization = user.memberships.get().organization
    brand = services.brand_create(organization=organization, name="Trailhead Outdoor", palette=["#0B6E4F", "#FFF8E7"])
    campaign = services.campaign_create(organization=organization, brand=brand, name="Autumn trails",
                                        brief="Trail shoes", segments=[
        {"name": "Outdoors", "attributes": {"interests": ["hiking", "camping"], "style": "rugged"}},
        {"name": "Players", "attributes": {"interests": ["video games"], "style": "neon"}},
    ])
    segments_embed(campaign_id=campaign.pk)
    cta = f"{live_server.url}/healthz"
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.LIVE, cta_url=cta)
    outdoors, players = campaign.segments.order_by("position")
    clips = {outdoors.pk: _clip(campaign, outdoors, (255, 170, 0)), players.pk: _clip(campaign, players, (0, 230, 120))}

    # The marketer uploads the CSV on the campaign page; the job runs (here, in-process, as a worker would).
    sign_in(page, user)
    page.goto(f"/campaigns/{campaign.pk}/")
    card = page.locator("#recipients")
    card.get_by_label("Recipients CSV").set_input_files(
        files=[{"name": "recipients.csv", "mimeType": "text/csv", "buffer": CSV_TEXT.encode()}])
    card.get_by_role("button", name="Upload recipients").click()
    expect(page.locator(".msg.success")).to_contain_text("Recipients are being imported")
    job = Job.objects.get(campaign=campaign, kind=Job.Kind.IMPORT_RECIPIENTS)
    services.job_run(job_id=job.pk, work=recipients_import_run)
    page.reload()
    card = page.locator("#recipients")
    expect(card.locator("[data-import-summary]")).to_contain_text("4 rows: 3 recipients placed, 1 bad rows")
    expect(card.locator("[data-import-errors] tbody tr")).to_have_count(1)
    expect(card.locator("[data-import-errors] tbody tr").first).to_contain_text("5")
    expect(card.locator("[data-import-errors] tbody tr").first).to_contain_text("not valid!")
    card.scroll_into_view_if_needed()
    shoot(page, "42-campaign-recipients")

    # The links: one per good row.
    with page.expect_download() as download:
        card.get_by_role("link", name="Download 3 page links (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sorted(r["external_id"] for r in rows) == ["jo", "mei-lin", "sam"]
    assert all(r["page_url"].startswith(f"{live_server.url}/p/") and r["clip_id"] for r in rows)

    # Every page on a phone, no login: the clip plays, with its poster, in the brand's colours.
    for locale, language in (("zh-TW", "zh-Hant"), ("en-US", "en")):
        phone = chromium.new_context(locale=locale, **PHONE)
        try:
            viewer = phone.new_page()
            for row in rows:
                viewer.goto(row["page_url"])
                video = viewer.locator("video")
                expect(video).to_have_attribute("data-clip", row["clip_id"])
                assert video.get_attribute("poster").startswith("http")
                viewer.wait_for_function("() => { const v = document.querySelector('video');"
                                         " return v.readyState >= 2 && v.currentTime > 0 && !v.error; }",
                                         timeout=15_000)
                expect(viewer.locator("a.cta")).to_be_in_viewport()
                assert viewer.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
                assert viewer.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") \
                    == "rgb(11, 110, 79)"
            # The recipient's own language (mei-lin's CSV row says zh-TW) wins over the phone's.
            viewer.goto(next(r["page_url"] for r in rows if r["external_id"] == "mei-lin"))
            expect(viewer.locator("html")).to_have_attribute("lang", "zh-Hant")
            expect(viewer.locator("a.cta")).to_have_text("了解更多")
            viewer.goto(next(r["page_url"] for r in rows if r["external_id"] == "jo"))
            expect(viewer.locator("html")).to_have_attribute("lang", language)
            if language == "zh-Hant":
                viewer.goto(next(r["page_url"] for r in rows if r["external_id"] == "mei-lin"))
                shoot(viewer, "40-recipient-page-phone-zh-hant")
            else:
                expect(viewer.locator("a.cta")).to_have_text("Learn more")
                shoot(viewer, "41-recipient-page-phone-en")  # jo's page
        finally:
            phone.close()
    impressions = Event.objects.filter(type="impression", clip__campaign=campaign)
    assert impressions.count() == 2 * (3 + 2) + 1  # every open above, each on the clip the CSV names
    assert set(impressions.values_list("clip_id", flat=True)) <= {c.pk for c in clips.values()}

    # The call to action: a click recorded, then the campaign's own URL.
    phone = chromium.new_context(locale="zh-TW", **PHONE)
    try:
        viewer = phone.new_page()
        sam = next(r for r in rows if r["external_id"] == "sam")
        viewer.goto(sam["page_url"])
        viewer.locator("a.cta").tap()
        viewer.wait_for_url(cta)
        assert Event.objects.filter(type="click", profile__external_id="sam", clip_id=int(sam["clip_id"])).count() == 1

        # Revoked: a plain 404 page, in the viewer's language.
        services.recipient_pages_revoke(campaign=campaign, external_ids=["sam"])
        response = viewer.goto(sam["page_url"])
        assert response.status == 404
        expect(viewer.locator("h1")).to_have_text("找不到此頁面")
        expect(viewer.locator("video")).to_have_count(0)
    finally:
        phone.close()
