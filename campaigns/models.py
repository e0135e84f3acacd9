"""The domain model: organizations and their brands, assets, LoRAs, campaigns, viewers, clips, jobs.

Every customer row carries its Organization, so that every query can be scoped by it. Writes go
through ``campaigns.services``, reads through ``campaigns.selectors``.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from generation import limits


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True


class Organization(TimeStamped):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.name


class OrgOwned(TimeStamped):
    """A row that belongs to one customer; selectors always filter on ``organization``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class Membership(TimeStamped):
    class Role(models.TextChoices):
        MARKETER = "marketer", _("Marketer")
        REVIEWER = "reviewer", _("Reviewer")
        ADMIN = "admin", _("Admin")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MARKETER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


class ApiKey(OrgOwned):
    class Scope(models.TextChoices):
        SERVE = "serve", "serve"
        MANAGE = "manage", "manage"

    name = models.CharField(max_length=100, blank=True)
    # The first characters of the key, shown in the admin so a key can be recognised; not secret.
    prefix = models.CharField(max_length=12, db_index=True)
    hashed_key = models.CharField(max_length=64, unique=True)  # sha256 hex of the whole key
    scopes = models.JSONField(default=list)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def __str__(self) -> str:
        return f"{self.prefix}… ({', '.join(self.scopes)})"


class Brand(OrgOwned):
    name = models.CharField(max_length=limits.MAX_NAME_CHARS)
    palette = models.JSONField(default=list, blank=True)  # ["#RRGGBB", ...]
    style_notes = models.TextField(blank=True, max_length=limits.MAX_STYLE_NOTES_CHARS)
    # The rare word the brand's LoRA is trained to associate with its look.
    trigger_token = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="brand_name_unique_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


def asset_upload_to(instance: "BrandAsset", filename: str) -> str:
    return f"org-{instance.organization_id}/brands/{instance.brand_id}/assets/{instance.checksum}{_suffix(filename)}"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def asset_poster_to(instance: "BrandAsset", filename: str) -> str:
    return f"org-{instance.organization_id}/brands/{instance.brand_id}/assets/{instance.checksum}.poster.jpg"


class BrandAsset(OrgOwned):
    """An uploaded image or clip. An image is decoded in the request (Pillow, bounded) and is ready
    at once; a clip is only probed there (container metadata) and is decoded, checked and given a
    poster on the cpu queue (campaigns.services.asset_checks), `processing` until then."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        CLIP = "clip", _("Clip")

    class Status(models.TextChoices):
        PROCESSING = "processing", _("Being checked")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="assets")
    file = models.FileField(upload_to=asset_upload_to, max_length=300)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    content_type = models.CharField(max_length=64)
    caption = models.CharField(max_length=limits.MAX_CAPTION_CHARS, blank=True)
    checksum = models.CharField(max_length=64)  # sha256 hex of the bytes
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    num_frames = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    error = models.CharField(max_length=500, blank=True)
    poster = models.FileField(upload_to=asset_poster_to, max_length=300, blank=True)
    # Tries at decoding a clip: a clip whose decoding kills worker after worker fails instead.
    check_attempts = models.PositiveSmallIntegerField(default=0)
    check_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand", "checksum"], name="asset_once_per_brand")]
        # Every worker's watchdog looks for clips still being checked every few seconds: only those.
        indexes = [models.Index(fields=["created_at"], condition=models.Q(status="processing"),
                                name="asset_being_checked")]

    def __str__(self) -> str:
        return f"{self.kind} {self.checksum[:8]} of {self.brand_id}"


class Job(OrgOwned):
    """Long work, shown live in the dashboard; a worker that dies leaves it to be redelivered."""

    class Kind(models.TextChoices):
        TRAIN_LORA = "train_lora", _("LoRA training")
        GENERATE_CLIPS = "generate_clips", _("Clip generation")
        SEGMENT_PROFILES = "segment_profiles", _("Segmentation")
        EDIT_CLIP = "edit_clip", _("Clip edit")
        RESCENE_CAMPAIGN = "rescene_campaign", _("Re-scene per segment")
        IMPORT_RECIPIENTS = "import_recipients", _("Recipients import")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    message = models.CharField(max_length=500, blank=True)
    # What the work reports beside the fraction, as data (LoRA training: {"step", "total", "loss"}).
    progress_data = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Workers that died (or went silent) while running this job; JOB_MAX_ATTEMPTS of them fail it.
    worker_losses = models.PositiveIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    campaign = models.ForeignKey("Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The Celery worker (node name) that runs or last ran the job, and the worker whose own queue
    # it was sent to for its brand's adapter (empty: the shared queue). See services.fleet.
    worker = models.CharField(max_length=200, blank=True)
    routed_to = models.CharField(max_length=200, blank=True, db_index=True)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class FleetWorker(models.Model):
    """A Celery worker as its watchdog reports it: alive while `seen_at` is recent."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(db_index=True)
    # Whether it serves the gpu queue: only those are sent a gpu job through their own queue.
    gpu = models.BooleanField(default=False)
    # LoRA adapters this worker's engine loaded since it started (services.fleet).
    adapter_loads = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.hostname


class LoraAdapter(OrgOwned):
    class Status(models.TextChoices):
        TRAINING = "training", _("Training")
        SUCCEEDED = "succeeded", _("Ready")
        FAILED = "failed", _("Failed")

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="loras")
    version = models.PositiveIntegerField()
    base_model = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    file = models.FileField(max_length=300, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)  # {"losses": [...], "final_loss": ...}
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="lora")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand", "version"], name="lora_version_unique")]
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"{self.brand} LoRA v{self.version}"


class Campaign(OrgOwned):
    class Objective(models.TextChoices):
        # Which clip counter the variant chooser's Thompson sampling maximizes per impression.
        CLICKS = "clicks", _("Clicks")
        COMPLETES = "completes", _("Completed views")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        GENERATING = "generating", _("Generating")
        IN_REVIEW = "in_review", _("In review")
        LIVE = "live", _("Live")
        PAUSED = "paused", _("Paused")
        ARCHIVED = "archived", _("Archived")

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=limits.MAX_NAME_CHARS)
    brief = models.TextField(max_length=limits.MAX_BRIEF_CHARS)
    num_frames = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # k for "cluster the organization's profiles into k segments"; null when the marketer defined them.
    segment_count = models.PositiveIntegerField(null=True, blank=True)
    # A camera-move preset key (generation.personalization.CAMERA_PRESETS), resolved at creation.
    camera = models.CharField(max_length=32, blank=True)
    cta_url = models.URLField(max_length=limits.MAX_URL_CHARS, blank=True, default="")
    # Image-to-video: every clip starts from this brand image (fitted to the campaign's size).
    start_image = models.ForeignKey(BrandAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    objective = models.CharField(max_length=16, choices=Objective.choices, default=Objective.CLICKS)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Profile(OrgOwned):
    """A viewer as an app knows them: an id of the app's and free-form preferences."""

    external_id = models.CharField(max_length=limits.MAX_EXTERNAL_ID_CHARS)
    attributes = models.JSONField(default=dict)
    embedding = models.JSONField(null=True, blank=True)  # list[float], unit length
    embedded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="profile_external_id_unique"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Segment(OrgOwned):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=limits.MAX_NAME_CHARS)
    attributes = models.JSONField(default=dict, blank=True)
    centroid = models.JSONField(null=True, blank=True)  # list[float]
    position = models.PositiveIntegerField(default=0)

    class SettingSource(models.TextChoices):
        MARKETER = "marketer", _("Set by the marketer")
        SUGGESTED = "suggested", _("Suggested")

    # Where this audience's clips take place; empty until the marketer sets it or a suggestion is made.
    setting = models.CharField(max_length=limits.MAX_SETTING_CHARS, blank=True)
    setting_source = models.CharField(max_length=16, choices=SettingSource.choices, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="segment_name_unique")]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(OrgOwned):
    """Which segment of a campaign a viewer falls in, and the variant they were first shown."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="segment_memberships")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    distance = models.FloatField(default=0.0)
    clip = models.ForeignKey("Clip", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "campaign"], name="one_segment_per_campaign")]


class RecipientPage(OrgOwned):
    """A viewer's personal landing page in a campaign: reached by a long random token, no login.

    Revoking it (``revoked_at``) makes the token answer 404 for good; erasing the viewer removes it.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipient_pages")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="recipient_pages")
    # secrets.token_urlsafe(32): 43 characters, 256 random bits (services.recipients).
    token = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "profile"], name="one_page_per_recipient")]

    def __str__(self) -> str:
        return f"page of {self.profile_id} in {self.campaign_id}"


def clip_upload_to(instance: "Clip", filename: str) -> str:
    return f"org-{instance.organization_id}/campaigns/{instance.campaign_id}/clips/{filename}"


class Clip(OrgOwned):
    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review", _("Pending review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="clips")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="clips")
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="clips")
    variant = models.PositiveIntegerField(default=0)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField()
    model = models.CharField(max_length=300)
    lora = models.ForeignKey(LoraAdapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="clips")
    lora_version = models.PositiveIntegerField(null=True, blank=True)
    steps = models.PositiveIntegerField()
    guidance = models.FloatField()
    num_frames = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    video = models.FileField(upload_to=clip_upload_to, max_length=300)
    poster = models.FileField(upload_to=clip_upload_to, max_length=300)
    seconds = models.FloatField(default=0.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_REVIEW, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Running totals of this clip's events, bumped with F() as events arrive: choosing a variant
    # (Thompson sampling) and the dashboard read them instead of counting Event rows.
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    completes = models.PositiveBigIntegerField(default=0)
    # The viewing funnel between impression and complete (video players report these).
    starts = models.PositiveBigIntegerField(default=0)
    first_quartiles = models.PositiveBigIntegerField(default=0)
    midpoints = models.PositiveBigIntegerField(default=0)
    third_quartiles = models.PositiveBigIntegerField(default=0)
    # Provenance of an edited clip: the clip it was made from, the edit (kind and the request's
    # fields) and the keep-mask used (a PNG strip: the output's frames side by side, white where kept).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits")
    edit = models.JSONField(default=dict, blank=True)
    mask = models.FileField(upload_to=clip_upload_to, max_length=300, blank=True)
    # Which engine path made it: "text" (plain text-to-video), "latent_blend" (known pixels held
    # in the latents, then pasted back), "latent_blend_motion" (and new frames guided by the clip's
    # own motion), "already_seamless", or a native conditioned pipeline's class name.
    conditioning = models.CharField(max_length=64, default="text")
    # What the campaign plan (generation/plan.py) did for this clip: shared prefix (its prompt, seed
    # and steps), step cache and threshold, guidance steps, micro-batch. Empty: one plain call.
    plan = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["segment_id", "variant", "id"]
        constraints = [
            # A redelivered generation job finds its finished clips instead of making them again.
            models.UniqueConstraint(fields=["job", "segment", "variant"], name="clip_once_per_job_slot"),
        ]
        indexes = [models.Index(fields=["campaign", "status", "segment"])]

    def __str__(self) -> str:
        return f"clip #{self.pk} ({self.status})"


class Review(OrgOwned):
    """One decision on a clip: an append-only audit trail."""

    class Decision(models.TextChoices):
        APPROVE = "approve", _("Approve")
        REJECT = "reject", _("Reject")

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    note = models.TextField(blank=True, max_length=limits.MAX_REVIEW_NOTE_CHARS)

    class Meta:
        ordering = ["-created_at"]

    @property
    def decided_by(self) -> str:
        if self.reviewer_id:
            return self.reviewer.get_username()
        if self.api_key_id:
            return f"API key {self.api_key.prefix}…"
        return "unknown"


class Event(OrgOwned):
    class Type(models.TextChoices):
        IMPRESSION = "impression", _("Impression")
        CLICK = "click", _("Click")
        COMPLETE = "complete", _("Complete")
        # The viewing funnel between an impression and a complete (VAST players report these).
        START = "start", _("Start")
        FIRST_QUARTILE = "first_quartile", _("25% watched")
        MIDPOINT = "midpoint", _("50% watched")
        THIRD_QUARTILE = "third_quartile", _("75% watched")

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="events")
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    type = models.CharField(max_length=16, choices=Type.choices)
    # The VAST answer (its AdServingId) whose signed tracking URL reported this event; null for
    # events posted to the API. Unique with the type: a tracking URL fired twice records once.
    serving_id = models.UUIDField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["clip", "type"])]
        constraints = [
            models.UniqueConstraint(fields=["serving_id", "type"], condition=models.Q(serving_id__isnull=False),
                                    name="event_once_per_vast_tracking_url"),
        ]


class WebhookEndpoint(OrgOwned):
    """Where an organization wants to hear about its jobs, clips and campaigns (Standard Webhooks)."""

    class EventType(models.TextChoices):
        JOB_SUCCEEDED = "job.succeeded", "job.succeeded"
        JOB_FAILED = "job.failed", "job.failed"
        CLIP_PENDING_REVIEW = "clip.pending_review", "clip.pending_review"
        CLIP_APPROVED = "clip.approved", "clip.approved"
        CLIP_REJECTED = "clip.rejected", "clip.rejected"
        CAMPAIGN_STATUS_CHANGED = "campaign.status_changed", "campaign.status_changed"
        WEBHOOK_TEST = "webhook.test", "webhook.test"

    url = models.URLField(max_length=limits.MAX_URL_CHARS)
    events = models.JSONField(default=list)  # a subset of EventType values
    # `whsec_` + base64 of 32 random bytes: the HMAC key. Kept as it is because signing needs it;
    # shown to the customer only when it is made (creation, rotation).
    secret = models.CharField(max_length=100)
    # The secret before the last rotation, still signed with until this time, so receivers can switch over.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(OrgOwned):
    """One event for one endpoint: tried until it gets a 2xx or its retry window closes."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # `webhook-id`: one per event (the same for every endpoint and every attempt).
    event_id = models.CharField(max_length=40, db_index=True)
    type = models.CharField(max_length=40)
    # The exact JSON body sent, so every attempt sends the same bytes.
    payload = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due; null once delivered or given up.
    next_retry_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Every attempt: [{"at", "status_code", "error", "ms"}], oldest first.
    history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_event_once_per_endpoint"),
        ]
        indexes = [models.Index(fields=["status", "next_retry_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} → {self.endpoint_id} ({self.status})"
