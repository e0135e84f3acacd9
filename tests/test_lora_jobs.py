"""LoRA training as a job: real worker processes, a worker killed mid-run, resume, and generation with the LoRA."""
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import services
from campaigns.models import Clip, Job, LoraAdapter
from tests.conftest import bucket_keys
from tests.helpers import finish_on_a_new_worker, image_bytes, start_worker_process, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def brand_with_assets(org, colours=((228, 87, 46), (41, 51, 92), (243, 241, 231))):
    brand = services.brand_create(organization=org, name=f"Brand {org.pk}", style_notes="bold orange")
    for i, colour in enumerate(colours):
        services.asset_upload(brand=brand, upload=SimpleUploadedFile(f"{i}.png", image_bytes(size=(64, 64), colour=colour)),
                              caption="an orange shoe")
    return brand


def test_a_killed_training_worker_resumes_from_its_checkpoint(org, s3_endpoint, s3_client, tmp_path):
    from safetensors.torch import load_file

    from adplatform.celery import app

    app.control.purge()
    brand = brand_with_assets(org)
    job = services.brand_train(brand=brand, steps=600, rank=4)

    first = start_worker_process(s3_endpoint, tmp_path / "w1")
    try:
        wait_for(lambda: ((Job.objects.get(pk=job.pk).result or {}).get("checkpoint") or {}).get("step", 0) >= 40,
                 timeout=240, interval=0.05)
    finally:
        log_first = stop(first, signal.SIGKILL)  # no goodbye: the task stays unacknowledged
    killed_at = Job.objects.get(pk=job.pk)
    assert killed_at.status == Job.Status.RUNNING, log_first[-3000:]
    checkpoint_step = killed_at.result["checkpoint"]["step"]

    # The watchdog requeues the job once its heartbeat is a minute old; the live worker takes it.
    log_second = finish_on_a_new_worker(job, s3_endpoint, tmp_path / "w2")
    assert job.status == Job.Status.SUCCEEDED, job.error + log_second[-3000:]
    assert (job.attempts, job.worker_losses) == (2, 1)
    assert job.result["resumed_from_step"] == checkpoint_step > 0
    # No checkpoint outlives the run: the LoRA file is all that is left of it in storage.
    assert not [k for k in bucket_keys(s3_client) if "/checkpoints/" in k]

    lora = LoraAdapter.objects.get(job=job)
    assert lora.status == LoraAdapter.Status.SUCCEEDED and lora.file.name.endswith(".safetensors")
    losses = lora.metrics["losses"]
    assert len(losses) == 600
    assert sum(losses[-30:]) / 30 < sum(losses[:30]) / 30  # it learned

    # The same weights as a run that was never interrupted.
    from generation.tiny_model import resolve_model_path
    from generation.training import train_lora

    from campaigns.services.training import _samples, training_size

    straight = train_lora(model_path=resolve_model_path(settings.GENERATION_MODEL, Path(settings.MODEL_CACHE_DIR)),
                          samples=_samples(brand, tmp_path / "assets"), output_dir=tmp_path / "straight",
                          steps=600, rank=4, learning_rate=lora.parameters["learning_rate"], seed=0,
                          checkpoint_every=0, **training_size())
    local = tmp_path / "resumed.safetensors"
    with lora.file.open("rb") as fh:
        local.write_bytes(fh.read())
    import torch

    resumed, expected = load_file(local), load_file(straight.lora_path)
    assert resumed.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=1e-4, atol=1e-5)


def test_generation_uses_the_brands_newest_lora(worker, org, manage_client):
    brand = brand_with_assets(org)
    campaign = services.campaign_create(organization=org, brand=brand, name="C", brief="shoes",
                                        num_frames=9, width=32, height=32)
    before = services.campaign_generate(campaign=campaign, steps=2)
    wait_for(lambda: Job.objects.get(pk=before.pk).is_finished, timeout=120)

    train = services.brand_train(brand=brand, steps=40, rank=4, learning_rate=5e-3)
    wait_for(lambda: Job.objects.get(pk=train.pk).is_finished, timeout=240)
    assert Job.objects.get(pk=train.pk).status == Job.Status.SUCCEEDED, Job.objects.get(pk=train.pk).error
    # A late step's figures (progress is written at most 5 times a second), as data for the brand
    # page's live chart, not parsed from the message.
    data = Job.objects.get(pk=train.pk).progress_data
    assert data["total"] == 40 and 1 <= data["step"] <= 40 and isinstance(data["loss"], float)

    after = services.campaign_generate(campaign=campaign, steps=2)
    wait_for(lambda: Job.objects.get(pk=after.pk).is_finished, timeout=120)
    plain, styled = Clip.objects.get(job=before), Clip.objects.get(job=after)
    assert (plain.lora_version, styled.lora_version) == (None, 1)
    assert plain.seed == styled.seed  # same slot, same seed: only the LoRA differs
    from tests.helpers import decode

    assert (decode(plain.video.name) != decode(styled.video.name)).any()
    listed = manage_client.get(f"/api/v1/campaigns/{campaign.pk}/clips").json()
    assert sorted(c["lora_version"] or 0 for c in listed) == [0, 1]
