"""`manage.py generate --campaign <id>`: queue (or run here) clip generation for a campaign."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaigns import services
from campaigns.errors import ServiceError
from campaigns.models import Campaign

from ._jobs import run_job_here


class Command(BaseCommand):
    help = "Generate clips for every segment of a campaign (queued for the gpu workers, or --now here)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, required=True, help="campaign id")
        parser.add_argument("--variants", type=int, default=1, help="variants per segment (1-8)")
        parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
        parser.add_argument("--now", action="store_true", help="run in this process instead of on a worker")

    def handle(self, *args, campaign: int, variants: int, steps: int | None, now: bool, **options):
        found = Campaign.objects.select_related("organization").filter(pk=campaign).first()
        if found is None:
            raise CommandError(f"no campaign with id {campaign}.")
        try:
            job = services.campaign_generate(campaign=found, variants_per_segment=variants, steps=steps, enqueue=not now)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
        except ServiceError as exc:
            raise CommandError(exc.message)
        if not now:
            self.stdout.write(f"queued generation job {job.pk} for campaign {found.pk} ({found.name})")
            return
        from campaigns.services.generation import campaign_generate_run

        job = run_job_here(job, campaign_generate_run, label=f"campaign {found.pk}")
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or job.message}")
        self.stdout.write(f"job {job.pk} made {job.result.get('clips')} clips, waiting for review")
