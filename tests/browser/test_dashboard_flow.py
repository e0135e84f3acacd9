"""A marketer's and a reviewer's day in the dashboard, in a real browser against a real worker.

Sign in, create a brand with its palette, drop assets (one bad file shows its own error), train
the brand's style and watch it, write a campaign (Chinese brief and segment), generate its clips
live, approve one and reject the other with notes (buttons and keyboard), go live, see the stats
an app's events produce, read the audit trail and the jobs, switch to Traditional Chinese, and
look at it on a phone. A screenshot of each main page goes to test-artifacts/screenshots/.
"""
import io
import re

import pytest
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Clip, Membership
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker]

JOB_TIMEOUT_MS = 240_000  # first use in a session imports torch and builds the tiny model


def png(colour: tuple[int, int, int], size: int = 64) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), colour)
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_day_in_the_dashboard(page, browser_context, live_server, worker, member, shoot):
    user = member(Membership.Role.ADMIN, username="maya")

    # 1. Sign in.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    shoot(page, "01-sign-in")
    sign_in(page, user)
    expect(page.get_by_role("heading", name="Welcome back, maya")).to_be_visible()
    shoot(page, "02-overview-empty")

    # 2. A brand: name, palette (one colour added in the editor), style notes.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Brands").click()
    page.get_by_role("link", name="Create your first brand").click()
    page.get_by_label("Name").fill("Trailhead")
    page.get_by_role("button", name="+ Add colour").click()
    page.get_by_label("Colour 4").fill("#2e7d32")
    page.get_by_label("Style notes").fill("sunlit mountain trails, warm film grain, confident and friendly")
    shoot(page, "03-brand-new")
    page.get_by_role("button", name="Create brand").click()
    expect(page.get_by_role("heading", name="Trailhead", level=1)).to_be_visible()
    expect(page.locator(".page-head .swatch")).to_have_count(4)

    # 3. Assets by drop zone: two images go up, a text file pretending to be a PNG is refused.
    page.set_input_files("#asset-files", files=[
        {"name": "trail.png", "mimeType": "image/png", "buffer": png((228, 87, 46))},
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"these are my notes, not a picture"},
        {"name": "lake.png", "mimeType": "image/png", "buffer": png((41, 51, 92))},
    ])
    failed = page.locator(".upload.failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("notes.png")
    expect(failed).to_contain_text("PNG, JPEG or WebP images and MP4 clips")
    expect(page.locator(".upload.done")).to_have_count(2)
    expect(page.locator(".assets .asset")).to_have_count(2)

    # 4. Train the brand's style; the panel follows the job live until the version is ready.
    training = page.locator("#training")
    training.get_by_text("Training settings").click()
    training.get_by_label("Steps").fill("6")
    training.get_by_role("button", name="Train the brand style").click()
    expect(page.locator("#training .job .pill.succeeded")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#training svg.chart polyline")).to_be_visible()
    expect(page.locator("#training table")).to_contain_text("v1")
    expect(page.locator("#training table")).to_contain_text("Ready")
    shoot(page, "04-brand")

    # 5. A campaign from a brief: custom small size, two segments of the marketer's, one Chinese.
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name").fill("Summer trails 夏季步道")
    page.get_by_label("Brief").fill("夏季登山鞋特賣：陽光步道上的輕量登山鞋 — summer sale on trail shoes")
    expect(page.locator("[data-custom-size]")).to_be_hidden()
    page.get_by_label("Custom size").check()
    page.get_by_label("Width (px)").fill("64")
    page.get_by_label("Height (px)").fill("64")
    page.get_by_label("Frames", exact=True).fill("9")
    page.get_by_label("Frames per second").fill("8")
    page.locator("#seg-name-1").fill("登山客")
    page.locator("#seg-attrs-1").fill("興趣：登山、露營；風格：自然")
    page.locator("#seg-name-2").fill("City runners")
    page.locator("#seg-attrs-2").fill("interests: running, coffee; style: urban")
    shoot(page, "05-campaign-new")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", name=re.compile("Summer trails"))).to_be_visible()

    # 6. Generate: live progress, then the page shows each segment's clips.
    page.get_by_label("Variants per segment").fill("1")
    page.get_by_label("Denoising steps").fill("2")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#clips .clip")).to_have_count(2, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#progress .pill.succeeded")).to_be_visible()
    hikers = page.locator(".segment", has_text="登山客")
    expect(hikers.locator(".chip").first).to_have_text("興趣: 登山, 露營")
    expect(hikers.locator(".prompt")).to_contain_text("夏季登山鞋特賣")
    expect(hikers.locator(".prompt")).to_contain_text("登山")
    expect(hikers.locator(".clip dl")).to_contain_text("v1")  # the brand style version it used
    assert hikers.locator("video").get_attribute("poster")
    clips = list(Clip.objects.order_by("segment__position"))
    assert "夏季登山鞋特賣" in clips[0].prompt and "登山" in clips[0].prompt and clips[0].lora_version == 1
    shoot(page, "06-campaign-generated")

    # 7. Review: approve one with a note by button, reject the other by keyboard.
    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("Review")).click()
    items = page.locator("[data-review-item]")
    expect(items).to_have_count(2)
    shoot(page, "07-review-queue")
    first, second = items.nth(0), items.nth(1)
    first.get_by_label("Note").fill("On brand, lovely light.")
    first.get_by_role("button", name="Approve").click()
    expect(first.locator("[data-result]")).to_contain_text("approved")
    expect(second).to_have_class(re.compile("current"))  # focus moved on to the next clip
    second.get_by_label("Note").fill("The shoe is cut off at the edge.")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    expect(second.locator("[data-result]")).to_contain_text("rejected")
    shoot(page, "08-review-decided")
    approved = Clip.objects.get(status=Clip.Status.APPROVED)

    # 8. The audit trail keeps both decisions, with their notes and who made them.
    page.get_by_role("link", name="Audit trail").first.click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody")).to_contain_text("On brand, lovely light.")
    expect(page.locator("tbody")).to_contain_text("The shoe is cut off at the edge.")
    expect(page.locator("tbody")).to_contain_text("maya")
    shoot(page, "09-audit-trail")

    # 9. Go live, let an app show the clip 40 times with 3 clicks, and read the stats.
    page.goto(f"/campaigns/{approved.campaign_id}/")
    page.get_by_role("button", name="Go live").click()
    expect(page.locator(".page-head .pill")).to_have_text("Live")
    _, key = services.api_key_create(organization=approved.organization, scopes=["serve"])
    for n in range(40):
        for kind in ["impression"] + (["click"] if n < 3 else []):
            answer = page.request.post(f"{live_server.url}/api/v1/events", headers={"Authorization": f"Api-Key {key}"},
                                       data={"clip_id": approved.pk, "profile": f"viewer-{n}", "type": kind})
            assert answer.status == 202, answer.text()
    page.reload()
    performance = page.locator("#performance")
    expect(performance).to_contain_text("40")
    expect(performance).to_contain_text("7.5%")
    expect(performance.locator(".bar-row", has_text="登山客")).to_contain_text("3/40")
    expect(page.locator(f"[aria-label='Clip #{approved.pk}'] .stats")).to_contain_text("7.5%")
    shoot(page, "10-campaign-live-stats")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".page-head .pill")).to_have_text("Paused")

    # 10. Every job, finished, with its progress.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody .pill.succeeded")).to_have_count(2)
    shoot(page, "11-jobs")
    page.get_by_role("link", name="Adclip").click()
    expect(page.locator(".tile").first).to_contain_text("1")
    shoot(page, "00-overview")

    # 11. Traditional Chinese, chosen in the header.
    page.goto(f"/campaigns/{approved.campaign_id}/")
    page.get_by_label("Language").select_option("zh-hant")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(page.get_by_role("navigation", name="主選單")).to_contain_text("行銷活動")
    expect(page.locator("#performance")).to_contain_text("點擊率")
    shoot(page, "12-campaign-zh-hant")

    # 12. On a phone.
    phone = browser_context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"/campaigns/{approved.campaign_id}/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways on a phone"
    shoot(phone, "13-phone-campaign-zh-hant")
    with phone.expect_navigation():
        phone.get_by_label("語言").select_option("en")
    phone.goto("/review/audit/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, "14-phone-audit")
    phone.close()
