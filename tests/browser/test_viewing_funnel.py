"""The viewing funnel on the campaign page, in a real browser: impressions → start → 25/50/75% →
complete → click per segment and per variant, in English and Traditional Chinese; the events come
from a VAST answer's tracking URLs, fired as a player fires them. Screenshot:
test-artifacts/screenshots/30-viewing-funnel.png."""
import urllib.parse
import urllib.request

import pytest
from lxml import etree
from playwright.sync_api import expect

from campaigns.models import Campaign, Clip, Membership
from tests import factories
from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.conftest import api_client_for

pytestmark = pytest.mark.browser
NS = {"v": "http://www.iab.com/VAST"}


def test_the_funnel_fills_as_a_player_fires_the_vast_tracking_urls(page, member, live_server):
    user = member(Membership.Role.MARKETER, username="maya")
    organization = user.memberships.get().organization
    campaign = factories.CampaignFactory(brand__organization=organization, name="Trail shoes",
                                         status=Campaign.Status.LIVE, objective=Campaign.Objective.COMPLETES)
    hikers = factories.SegmentFactory(campaign=campaign, name="Weekend hikers", position=0)
    clip = factories.ClipFactory(campaign=campaign, segment=hikers, status=Clip.Status.APPROVED, variant=0,
                                 impressions=9, starts=8, first_quartiles=7, midpoints=6, third_quartiles=5,
                                 completes=4, clicks=1)

    # A player: one VAST answer, then its impression, start and first quartile over real HTTP.
    answer = api_client_for(organization, ["serve"]).get(f"/api/v1/campaigns/{campaign.pk}/vast?profile=v1")
    root = etree.fromstring(answer.content)
    linear = root.find("v:Ad/v:InLine/v:Creatives/v:Creative/v:Linear", NS)
    urls = [root.findtext("v:Ad/v:InLine/v:Impression", namespaces=NS)] + [
        t.text for t in linear.findall("v:TrackingEvents/v:Tracking", NS) if t.get("event") in ("start", "firstQuartile")]
    for url in urls + urls:  # fired twice: counted once
        parts = urllib.parse.urlsplit(url.strip())
        with urllib.request.urlopen(f"{live_server.url}{parts.path}?{parts.query}", timeout=10) as response:
            assert response.headers["Content-Type"] == "image/gif"

    sign_in(page, user)
    page.goto(f"/campaigns/{campaign.pk}/")
    funnel = page.locator("#funnel")
    expect(funnel.get_by_role("heading", name="Viewing funnel")).to_be_visible()
    expect(funnel).to_contain_text("Variants are chosen for Completed views")
    segment_row = funnel.locator("tr.funnel-segment", has_text="Weekend hikers")
    cells = segment_row.locator("td")
    expect(cells).to_have_count(7)
    expect(cells.nth(0)).to_have_text("10")  # 9 + the player's impression
    expect(cells.nth(1)).to_contain_text("9")
    expect(cells.nth(1)).to_contain_text("90.0%")
    expect(cells.nth(2)).to_contain_text("8")
    expect(cells.nth(3)).to_contain_text("6")  # midpoint: not fired by the player
    expect(funnel.locator("tr.funnel-clip")).to_contain_text(f"variant 1 · clip #{clip.pk}")
    # The funnel card alone: the page's clip players have no real video to load here.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    funnel.screenshot(path=str(SCREENSHOTS / "30-viewing-funnel.png"))

    page.get_by_label("Language").select_option("zh-hant")
    expect(page.locator("#funnel h2")).to_have_text("觀看漏斗")
    expect(page.locator("#funnel thead")).to_contain_text("開始播放")
