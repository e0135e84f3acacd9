"""`manage.py demo`: the whole flow on the embedded default, then print the login.

Seeds the demo organization (a user, an API key, a brand with assets), trains the brand's LoRA,
creates a campaign with segments (two with the marketer's setting, one left to the platform's
suggestion) and a camera preset, generates clips, approves one variant per segment so that the
clip API answers, and leaves the rest in the review queue. Idempotent: a second run reuses what
exists and prints a fresh password and key. ``--host``/``--port`` say where the dashboard will be
served (the Makefile passes its HOST and PORT), so the printed addresses are the real ones.
"""
import io
import os
import secrets
import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from campaigns import selectors, services
from generation.colour import hex_to_rgb
from campaigns.models import BrandAsset, Campaign, Clip, Job, LoraAdapter, Membership
from campaigns.services.asset_checks import asset_check

from ._jobs import run_job_here

# Orange-led: the brand colour is one the tiny model never saw in training, so the LoRA has to teach it.
ORANGE, OFF_WHITE, NAVY = "#F28C28", "#F3F1E7", "#29335C"
BRAND = {"name": "Trailhead", "palette": [ORANGE, OFF_WHITE, NAVY],
         "style_notes": "sunlit outdoor scenes, warm film grain, confident and friendly"}
# The brand's pictures are drawn in the toy world that taught `tiny` (its shapes, at its size, on
# its named grounds) in the brand's orange, so that what the LoRA learns is the orange and not a new
# kind of picture: on large hand-drawn shapes over the brand's dark navy it learned a dark blob that
# took every clip's background and none of the orange. The grounds vary so that no one of them
# goes with the trigger, and so does the clip's: one moving right on black (the campaign's camera
# reads "moving right" to `tiny`) taught the runners' clips a black ground in place of the canyon.
GROUND_NAMES = ["white", "blue", "black", "green", "purple", "yellow", "red", "white"]
ORANGE_RGB = hex_to_rgb(ORANGE)
CAMERA = "pan_left"
# The box the demo's re-scene keeps where no approved clip shows the product on every frame: the
# frame's middle band, which a panned shape crosses.
HERO_BOX = [0.05, 0.15, 0.95, 0.85]
# Two settings are the marketer's; the commuters' is left to the platform, which suggests the
# catalogue's "a city street at night" from their attributes (通勤, 咖啡).
SEGMENTS = [
    {"name": "Weekend hikers", "attributes": {"interests": ["hiking", "camping"], "style": "rugged", "locale": "en-US"},
     "setting": "a mountain forest trail at dawn"},
    {"name": "城市通勤族", "attributes": {"interests": ["通勤", "咖啡"], "style": "極簡", "locale": "zh-TW"}},
    {"name": "Trail runners", "attributes": {"interests": ["running", "races"], "style": "energetic"},
     "setting": "a red rock canyon at sunset"},
]
VIEWERS = [
    ("viewer-ana", {"interests": ["hiking", "camping"], "style": "rugged"}),
    ("viewer-wei", {"interests": ["通勤", "咖啡"], "style": "極簡", "locale": "zh-TW"}),
    ("viewer-sam", {"interests": ["running"], "style": "energetic"}),
]


def brand_images() -> list[tuple[str, bytes, str]]:
    """On-brand pictures, drawn in the toy world: orange shapes standing on varied grounds, each
    captioned with what it shows apart from the brand's colour (the colour is what the trigger
    token learns), in the words the tiny model knows."""
    from PIL import Image

    from generation.toyworld.world import Scene, render_clip

    pictures = []
    for i, ground in enumerate(GROUND_NAMES):
        shape = ("square", "circle", "triangle")[i % 3]
        [frame] = render_clip(Scene(shape, "orange", "still", ground), seed=900 + i, num_frames=1, width=96, height=96,
                              colour_rgb=ORANGE_RGB)
        out = io.BytesIO()
        Image.fromarray(frame).save(out, format="PNG")
        pictures.append((f"trailhead-{i}.png", out.getvalue(), f"a {shape} standing still on a {ground} background"))
    return pictures


def brand_clip(*, num_frames: int = 17, size: int = 64) -> tuple[str, bytes, str]:
    """A short MP4: an orange circle rising over a blue ground."""
    from generation.media import write_mp4
    from generation.toyworld.world import Scene, render_clip

    scene = Scene("circle", "orange", "up", "blue")
    frames = render_clip(scene, seed=950, num_frames=num_frames, width=size, height=size, colour_rgb=ORANGE_RGB)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trailhead-moving.mp4"
        write_mp4(frames, path, fps=8)
        return path.name, path.read_bytes(), "a circle moving up on a blue background"


def _pick_hero(clips: list[Clip], *, brand_colour: str) -> tuple[Clip, list[float]]:
    """The clip that shows the product nearest the brand's colour, and a box around where the
    product goes in it (the pixels that stand out from the clip's ground in at least a quarter of
    its frames, and one pixel more), as a marketer picks a hero and draws its box. A clip whose
    product is missing from a frame is passed over; where every clip is passed over, the first one
    and the frame's middle band (`HERO_BOX`)."""
    import numpy as np

    from campaigns.services.editing import stored_frames
    from generation.colour import srgb_to_lab
    from generation.eval.adherence import foreground_mask

    target = srgb_to_lab(hex_to_rgb(brand_colour))
    best = None
    for clip in clips:
        frames = stored_frames(clip)
        _, mask = foreground_mask(frames)
        if not mask.any(axis=(1, 2)).all():
            continue
        distance = float(np.linalg.norm(srgb_to_lab(np.median(frames[mask], axis=0)) - target))
        if best is None or distance < best[0]:
            best = (distance, clip, mask)
    if best is None:
        return clips[0], HERO_BOX
    _, clip, mask = best
    height, width = mask.shape[1:]
    ys, xs = np.nonzero(mask.mean(axis=0) >= 0.25)
    if not len(xs):
        return clip, HERO_BOX
    return clip, [max(0, xs.min() - 1) / width, max(0, ys.min() - 1) / height,
                  min(width, xs.max() + 2) / width, min(height, ys.max() + 2) / height]


class Command(BaseCommand):
    help = "Run the demo flow on the embedded default and print the login and an API key."

    def add_arguments(self, parser):
        parser.add_argument("--variants", type=int, default=2, help="variants per segment")
        parser.add_argument("--steps", type=int, default=None, help="denoising steps")
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1",
                            help="where the dashboard is served (default: $HOST or 127.0.0.1)")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000),
                            help="the dashboard's port (default: $PORT or 8000)")

    def handle(self, *args, variants: int, steps: int | None, host: str, port: int, **options):
        org = services.organization_get_or_create(slug="demo", name="Demo Outdoor Co.")
        User = get_user_model()
        user, _ = User.objects.get_or_create(username="demo", defaults={"email": "demo@example.com"})
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        services.membership_set(user=user, organization=org, role=Membership.Role.ADMIN)
        _, raw_key = services.api_key_create(organization=org, scopes=["serve", "manage"], name="demo")

        brand = selectors.brand_list(organization=org).filter(name=BRAND["name"]).first()
        if brand is None:
            brand = services.brand_create(organization=org, **BRAND)
        elif brand.palette != BRAND["palette"]:
            brand = services.brand_update(brand=brand, palette=BRAND["palette"])
        for name, data, caption in [*brand_images(), brand_clip()]:
            asset, _created = services.asset_upload(brand=brand, upload=SimpleUploadedFile(name, data), caption=caption)
            if asset.status == BrandAsset.Status.PROCESSING:
                asset_check(asset_id=asset.pk)  # a worker's check, run here: training learns from ready clips only

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
                organization=org, brand=brand, name="Weekend trails", user=user, segments=SEGMENTS, camera=CAMERA,
                brief="Lightweight trail shoes for the weekend: grip on wet rock, comfort all day.",
            )
        else:  # seeded before settings existed: give the marketer's segments theirs
            for wanted in SEGMENTS:
                segment = campaign.segments.filter(name=wanted["name"], setting="").first()
                if segment is not None and wanted.get("setting"):
                    services.segment_update(segment=segment, setting=wanted["setting"])
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
        self._rescene_hero(campaign, user)
        self._viewers(org)

        clips = campaign.clips.count()
        pending = campaign.clips.filter(status=Clip.Status.PENDING_REVIEW).count()
        address = f"http://{host}:{port}"
        self.stdout.write(self.style.SUCCESS("\nDemo ready."))
        self.stdout.write(f"  Dashboard: {address}/   login: demo / {password}")
        self.stdout.write(f"  API key (serve, manage): {raw_key}")
        self.stdout.write(f"  Brand '{brand.name}' (id {brand.pk}), LoRA v{selectors.lora_latest_for_brand(brand=brand).version}")
        self.stdout.write(f"  Campaign '{campaign.name}' (id {campaign.pk}, camera {campaign.camera or 'from the brief'}): "
                          f"{clips} clips, {pending} waiting for review")
        for segment in campaign.segments.all():
            self.stdout.write(f"    {segment.name}: {segment.setting or '(suggested when generated)'}"
                              f"{' [suggested]' if segment.setting_source == 'suggested' else ''}")
        self.stdout.write(f"  Try: curl -H 'Authorization: Api-Key {raw_key}' "
                          f"'{address}/api/v1/campaigns/{campaign.pk}/clip?profile=viewer-wei'\n")

    def _rescene_hero(self, campaign: Campaign, user) -> None:
        """An approved clip re-scened for every segment: the product kept, each segment's setting
        around it (the edited clips wait for review). The demo picks the hero and draws the box as
        a marketer would (`_pick_hero`)."""
        from campaigns.services.editing import campaign_rescene, campaign_rescene_run

        approved = campaign.clips.filter(status=Clip.Status.APPROVED, parent__isnull=True).order_by(
            "segment__position", "variant", "id")
        if not approved.exists() or any(clip.edits.exists() for clip in approved):
            return
        hero, box = _pick_hero(list(approved), brand_colour=campaign.brand.palette[0])
        job = campaign_rescene(campaign=campaign, clip=hero, keep_box=box, user=user, enqueue=False)
        job = run_job_here(job, campaign_rescene_run, label="re-scening the hero clip for every segment")
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"re-scene failed: {job.error}")

    def _viewers(self, org) -> None:
        """A few viewer profiles, as an app would send them (embedded by the worker once it runs)."""
        upsert = getattr(services, "profile_upsert", None)
        if upsert is None:
            return
        for external_id, attributes in VIEWERS:
            upsert(organization=org, external_id=external_id, attributes=attributes)
