"""Live panels without a worker: the test moves a job along in the database and the page follows.

The poller swaps the training panel every second while its job runs (the loss chart grows point
by point), stops once the job is over, and a cancel button on the jobs page ends a running job.
"""
import pytest
from playwright.sync_api import expect

from campaigns.models import Job, LoraAdapter, Membership
from tests import factories
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_training_panel_follows_the_job(page, member, shoot):
    user = member(Membership.Role.MARKETER)
    org = user.memberships.get().organization
    brand = factories.BrandFactory(organization=org, name="Lakeside")
    job = factories.JobFactory(organization=org, brand=brand, kind=Job.Kind.TRAIN_LORA, status=Job.Status.RUNNING,
                               progress=0.3, message="step 3/10 loss 0.9000",
                               progress_data={"step": 3, "total": 10, "loss": 0.9})
    LoraAdapter.objects.create(organization=org, brand=brand, version=1, base_model="tiny", job=job,
                               parameters={"steps": 10, "rank": 8})
    sign_in(page, user)
    page.goto(f"/brands/{brand.pk}/")
    panel = page.locator("#training")
    expect(panel.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "30")
    expect(panel.locator("figure[data-live-loss] polyline")).to_have_count(1)

    for step, loss in [(5, 0.7), (8, 0.45)]:
        Job.objects.filter(pk=job.pk).update(progress=step / 10, message=f"step {step}/10 loss {loss:.4f}",
                                             progress_data={"step": step, "total": 10, "loss": loss})
        expect(panel.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", str(step * 10))
    points = panel.locator("figure[data-live-loss] polyline").get_attribute("points").split()
    assert len(points) == 3, points  # one point per step the page saw
    shoot(page, "04b-brand-training-live")

    losses = [0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.47, 0.45, 0.44, 0.43]
    LoraAdapter.objects.filter(job=job).update(status=LoraAdapter.Status.SUCCEEDED,
                                               metrics={"losses": losses, "final_loss": 0.43})
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=1.0, message="LoRA ready")
    expect(panel.locator(".job .pill.succeeded")).to_be_visible()
    expect(panel).to_contain_text("final loss 0.4300")
    assert page.locator("#training").get_attribute("data-poll") is None


def test_cancel_a_running_job_from_the_jobs_page(page, member, shoot):
    user = member(Membership.Role.MARKETER)
    org = user.memberships.get().organization
    campaign = factories.CampaignFactory(brand__organization=org, name="Autumn")
    job = factories.JobFactory(organization=org, campaign=campaign, kind=Job.Kind.GENERATE_CLIPS,
                               status=Job.Status.RUNNING, progress=0.25, message="segment 1/2 'General': step 1/2")
    sign_in(page, user)
    page.goto("/jobs/")
    row = page.locator(f"[data-job-row='{job.pk}']")
    expect(row).to_contain_text("25%")
    Job.objects.filter(pk=job.pk).update(progress=0.5)
    expect(row).to_contain_text("50%")  # the table refreshes itself
    shoot(page, "11b-jobs-running")
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator(".msg.success")).to_contain_text(f"Job #{job.pk} cancelled.")
    expect(page.locator(f"[data-job-row='{job.pk}'] .pill")).to_have_text("Cancelled")
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_a_dropped_clip_is_checked_and_the_grid_follows(page, member, shoot):
    """A clip goes up through the drop zone and shows "Being checked"; when its check ends (run
    here, as the cpu worker would), the grid swaps itself in with the poster, and the page reloads
    once so that training opens (it waited for a ready asset)."""
    from campaigns.models import BrandAsset
    from campaigns.services.asset_checks import asset_check
    from tests.helpers import mp4_bytes

    user = member(Membership.Role.MARKETER)
    brand = factories.BrandFactory(organization=user.memberships.get().organization, name="Lakeside")
    sign_in(page, user)
    page.goto(f"/brands/{brand.pk}/")
    page.set_input_files("#asset-files", files=[
        {"name": "lake.mp4", "mimeType": "video/mp4", "buffer": mp4_bytes(9, size=(64, 48))}])
    card = page.locator(".assets .asset")
    expect(card.locator(".pill.processing")).to_have_text("Being checked")
    expect(page.locator("#train-why")).to_contain_text("being checked")
    shoot(page, "04c-brand-clip-being-checked")

    assert asset_check(asset_id=BrandAsset.objects.get().pk) == "ready"
    expect(card.locator("video[poster]")).to_have_count(1)
    expect(card.locator(".pill")).to_have_count(0)
    expect(page.locator("#training button[type=submit]")).to_be_enabled()  # the page reloaded once
