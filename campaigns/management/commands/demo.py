"""`manage.py demo`: the whole flow on the embedded default, then print the login.

Seeds the demo organization (a user, an API key, a brand with assets), trains the brand's LoRA,
creates a campaign with segments, generates clips, approves one variant per segment so that the
clip API answers, and leaves the rest in the review queue. Idempotent: a second run reuses what
exists and prints a fresh password and key.
"""
import io
import secrets

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from campaigns import selectors, services
from campaigns.models import Campaign, Clip, Job, LoraAdapter, Membership

from ._jobs import run_job_here

BRAND = {"name": "Trailhead", "palette": ["#E4572E", "#F3F1E7", "#29335C"],
         "style_notes": "sunlit outdoor scenes, warm film grain, confident and friendly"}
SEGMENTS = [
    {"name": "Weekend hikers", "attributes": {"interests": ["hiking", "camping"], "style": "rugged", "locale": "en-US"}},
    {"name": "城市通勤族", "attributes": {"interests": ["通勤", "咖啡"], "style": "極簡", "locale": "zh-TW"}},
    {"name": "Trail runners", "attributes": {"interests": ["running", "races"], "style": "energetic"}},
]
VIEWERS = [
    ("viewer-ana", {"interests": ["hiking", "camping"], "style": "rugged"}),
    ("viewer-wei", {"interests": ["通勤", "咖啡"], "style": "極簡", "locale": "zh-TW"}),
    ("viewer-sam", {"interests": ["running"], "style": "energetic"}),
]


def brand_images(palette: list[str]) -> list[tuple[str, bytes, str]]:
    """A few on-brand pictures drawn here: palette shapes on palette grounds."""
    from PIL import Image, ImageDraw

    shapes = []
    for i, (ground, figure) in enumerate([(1, 0), (2, 0), (1, 2), (0, 1), (2, 1), (0, 2)]):
        image = Image.new("RGB", (96, 96), palette[ground])
        draw = ImageDraw.Draw(image)
        box = (18 + 4 * i, 18, 70 + 2 * i, 74)
        (draw.ellipse if i % 2 else draw.rectangle)(box, fill=palette[figure])
        out = io.BytesIO()
        image.save(out, format="PNG")
        shapes.append((f"trailhead-{i}.png", out.getvalue(), "sunlit trail gear in brand colours"))
    return shapes


class Command(BaseCommand):
    help = "Run the demo flow on the embedded default and print the login and an API key."

    def add_arguments(self, parser):
        parser.add_argument("--variants", type=int, default=2, help="variants per segment")
        parser.add_argument("--steps", type=int, default=None, help="denoising steps")

    def handle(self, *args, variants: int, steps: int | None, **options):
        org = services.organization_get_or_create(slug="demo", name="Demo Outdoor Co.")
        User = get_user_model()
        user, _ = User.objects.get_or_create(username="demo", defaults={"email": "demo@example.com"})
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        services.membership_set(user=user, organization=org, role=Membership.Role.ADMIN)
        _, raw_key = services.api_key_create(organization=org, scopes=["serve", "manage"], name="demo")

        brand = selectors.brand_list(organization=org).filter(name=BRAND["name"]).first() \
            or services.brand_create(organization=org, **BRAND)
        for name, data, caption in brand_images(brand.palette):
            services.asset_upload(brand=brand, upload=SimpleUploadedFile(name, data), caption=caption)

        from campaigns.services.generation import campaign_generate_run
        from campaigns.services.training import lora_train_run

        if not selectors.lora_latest_for_brand(brand=brand):
            LoraAdapter.objects.filter(brand=brand).exclude(status=LoraAdapter.Status.SUCCEEDED).delete()
            job = services.brand_train(brand=brand, user=user, enqueue=False)
            job = run_job_here(job, lora_train_run, label="training the brand LoRA")
            if job.status != Job.Status.SUCCEEDED:
                raise CommandError(f"LoRA training failed: {job.error}")

        campaign = selectors.campaign_list(organization=org).filter(name="Weekend trails").first()
        if campaign is None:
            campaign = services.campaign_create(
                organization=org, brand=brand, name="Weekend trails", user=user, segments=SEGMENTS,
                brief="Lightweight trail shoes for the weekend: grip on wet rock, comfort all day.",
            )
        if not campaign.clips.exists():
            job = services.campaign_generate(campaign=campaign, variants_per_segment=variants, steps=steps,
                                             user=user, enqueue=False)
            job = run_job_here(job, campaign_generate_run, label="generating clips")
            if job.status != Job.Status.SUCCEEDED:
                raise CommandError(f"generation failed: {job.error}")
            # One variant per segment approved, so that apps get clips; the rest wait in the queue.
            for clip in campaign.clips.filter(variant=0, status=Clip.Status.PENDING_REVIEW):
                services.clip_review(clip=clip, decision="approve", note="approved by the demo seed", user=user)
            services.campaign_set_status(campaign=campaign, status=Campaign.Status.LIVE)
        self._viewers(org)

        clips = campaign.clips.count()
        pending = campaign.clips.filter(status=Clip.Status.PENDING_REVIEW).count()
        self.stdout.write(self.style.SUCCESS("\nDemo ready."))
        self.stdout.write(f"  Dashboard: http://127.0.0.1:8000/   login: demo / {password}")
        self.stdout.write(f"  API key (serve, manage): {raw_key}")
        self.stdout.write(f"  Brand '{brand.name}' (id {brand.pk}), LoRA v{selectors.lora_latest_for_brand(brand=brand).version}")
        self.stdout.write(f"  Campaign '{campaign.name}' (id {campaign.pk}): {clips} clips, {pending} waiting for review")
        self.stdout.write(f"  Try: curl -H 'Authorization: Api-Key {raw_key}' "
                          f"'http://127.0.0.1:8000/api/v1/campaigns/{campaign.pk}/clip?profile=viewer-wei'\n")

    def _viewers(self, org) -> None:
        """A few viewer profiles, as an app would send them (embedded by the worker once it runs)."""
        upsert = getattr(services, "profile_upsert", None)
        if upsert is None:
            return
        for external_id, attributes in VIEWERS:
            upsert(organization=org, external_id=external_id, attributes=attributes)
