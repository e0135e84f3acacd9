"""The clip page's Edit panel in a real browser: draw the keep box on the poster with the mouse,
re-scene for every segment and for one, extend, loop and connect; each job shows up on the page.

No worker runs here: the jobs stay queued, which is what the page must show right after a submit.
Screenshots go to test-artifacts/screenshots/.
"""
import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, Clip, Job, Membership
from tests import factories
from tests.browser.conftest import sign_in
from tests.helpers import stored_clip

pytestmark = pytest.mark.browser


@pytest.fixture
def setup(member):
    user = member(Membership.Role.ADMIN)
    org = user.memberships.get().organization
    campaign = factories.CampaignFactory(brand__organization=org, name="Trail shoes", num_frames=9, width=64,
                                         height=64, status=Campaign.Status.IN_REVIEW)
    hikers = factories.SegmentFactory(campaign=campaign, name="Hikers", setting="mountain forest trail at dawn")
    commuters = factories.SegmentFactory(campaign=campaign, name="Commuters", setting="city street at night")
    hero = stored_clip(campaign, segment=hikers, status=Clip.Status.APPROVED, width=64, height=64)
    other = stored_clip(campaign, segment=commuters, width=64, height=64)
    return {"user": user, "campaign": campaign, "hero": hero, "other": other, "commuters": commuters}


def draw_box(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Mouse down at `start`, move, mouse up at `end` (fractions of the poster)."""
    surface = page.locator("[data-box-draw]")
    surface.scroll_into_view_if_needed()
    box = surface.bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=8)
    page.mouse.up()


def box_values(page) -> list[float]:
    form = page.locator("#rescene-form")
    return [float(form.locator(f"[data-box='{edge}']").input_value()) for edge in ("x0", "y0", "x1", "y1")]


def test_draw_the_keep_box_and_rescene_per_segment(page, setup, shoot):
    hero, campaign = setup["hero"], setup["campaign"]
    sign_in(page, setup["user"])

    # 1. From the campaign page's clip card to the clip's page.
    page.goto(f"/campaigns/{campaign.pk}/")
    page.locator(f"[data-clip='{hero.pk}']").get_by_role("link", name="Open and edit").click()
    expect(page).to_have_url(re.compile(rf"/clips/{hero.pk}/"))
    expect(page.get_by_role("heading", name=f"Clip #{hero.pk}")).to_be_visible()
    expect(page.locator(".keep-box")).to_be_hidden()
    shoot(page, "30-clip-edit-panel")

    # 2. Draw the box from right-bottom to left-top: the inputs hold the fractions, the box shows.
    draw_box(page, (0.7, 0.8), (0.2, 0.3))
    values = box_values(page)
    assert values == pytest.approx([0.2, 0.3, 0.7, 0.8], abs=0.02), values
    drawn, surface = page.locator(".keep-box").bounding_box(), page.locator("[data-box-draw]").bounding_box()
    assert drawn["width"] == pytest.approx(0.5 * surface["width"], abs=3)
    assert drawn["height"] == pytest.approx(0.5 * surface["height"], abs=3)
    shoot(page, "31-clip-edit-box-drawn")

    # 3. Re-scene for every segment: a job for the whole campaign, shown on the page.
    form = page.locator("#rescene-form")
    form.get_by_label("New scene").select_option("all")
    form.get_by_role("button", name="Re-scene").click()
    expect(page.locator(".msg.success")).to_contain_text("Re-scene for every segment queued as job #")
    job = Job.objects.get(kind=Job.Kind.RESCENE_CAMPAIGN)
    assert job.params["clip"] == hero.pk and job.params["keep_box"] == pytest.approx(values, abs=1e-3)
    panel = page.locator("#edit-jobs")
    expect(panel.locator(f"[data-job='{job.pk}']")).to_contain_text("Re-scene per segment")
    expect(panel.locator(f"[data-job='{job.pk}'] .pill")).to_have_text("Queued")
    shoot(page, "32-clip-edit-job-queued")

    # 4. A second box, re-scened into one segment only.
    draw_box(page, (0.1, 0.1), (0.5, 0.6))
    form.get_by_label("New scene").select_option(str(setup["commuters"].pk))
    form.get_by_role("button", name="Re-scene").click()
    expect(page.locator(".msg.success")).to_contain_text("Re-scene queued as job #")
    edit = Job.objects.get(kind=Job.Kind.EDIT_CLIP).params["edit"]
    assert edit["kind"] == "rescene" and edit["segment"] == setup["commuters"].pk
    assert edit["keep_box"] == pytest.approx([0.1, 0.1, 0.5, 0.6], abs=0.02)
    expect(panel.locator(".job")).to_have_count(2)


def test_extend_loop_and_connect_forms(page, setup, shoot):
    hero, other = setup["hero"], setup["other"]
    sign_in(page, setup["user"])
    page.goto(f"/clips/{hero.pk}/")

    # A refusal shows in the form it came from (the browser's own checks are off: the server says why).
    extend = page.locator("#extend-form")
    extend.get_by_label("New frames").fill("0")
    extend.get_by_role("button", name="Extend").click()
    expect(page.locator("#extend-form .errorlist")).to_contain_text("greater than or equal to 1")
    assert not Job.objects.exists()
    shoot(page, "33-clip-edit-refused")

    page.locator("#extend-form").get_by_label("New frames").fill("8")
    page.locator("#extend-form").get_by_label("Direction").select_option("backward")
    page.locator("#extend-form").get_by_role("button", name="Extend").click()
    expect(page.locator(".msg.success")).to_contain_text("Extend queued as job #")

    page.locator("#loop-form").get_by_label("Prompt for the new material").fill("the square circles back")
    page.locator("#loop-form").get_by_role("button", name="Make a loop").click()
    expect(page.locator(".msg.success")).to_contain_text("Loop queued as job #")

    page.locator("#connect-form").get_by_label("Bridge to clip").select_option(str(other.pk))
    page.locator("#connect-form").get_by_role("button", name="Connect").click()
    expect(page.locator(".msg.success")).to_contain_text("Connect queued as job #")

    edits = [j.params["edit"] for j in Job.objects.filter(kind=Job.Kind.EDIT_CLIP).order_by("pk")]
    assert edits == [{"kind": "extend", "frames": 8, "direction": "backward"},
                     {"kind": "loop", "prompt": "the square circles back"},
                     {"kind": "connect", "other_clip": other.pk}]
    expect(page.locator("#edit-jobs .job")).to_have_count(3)
    shoot(page, "34-clip-edit-jobs")


def test_edited_clips_sit_under_their_parent(page, setup, shoot):
    hero, campaign = setup["hero"], setup["campaign"]
    loop = factories.ClipFactory(campaign=campaign, segment=hero.segment, parent=hero, edit={"kind": "loop"},
                                 width=64, height=64, variant=3, poster=hero.poster.name, video=hero.video.name,
                                 conditioning="latent_blend")
    sign_in(page, setup["user"])
    page.goto(f"/campaigns/{campaign.pk}/")
    card = page.locator(f"[data-clip='{loop.pk}']")
    expect(card).to_contain_text(f"Loop of #{hero.pk}")
    assert card.evaluate("e => getComputedStyle(e).marginLeft") == "16px"  # indented under its parent
    assert page.locator(f"[data-clip='{hero.pk}']").evaluate("e => getComputedStyle(e).marginLeft") == "0px"
    shoot(page, "35-campaign-edits-nested")
    card.get_by_role("link", name="Open and edit").click()
    expect(page.locator(".page-head")).to_contain_text(f"Loop of #{hero.pk}")
    expect(page.locator("img.mask-strip")).to_have_count(0)  # this one has no mask file
