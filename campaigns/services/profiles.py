"""Viewer profiles: validated upsert, erasure, and (on a CPU worker) embedding + segment assignment.

An app PUTs a viewer's preferences; the upsert answers at once and leaves the embedding to the
``cpu.profile_embed`` task, which also places the viewer in the nearest segment of every campaign
of the organization. Erasure removes the profile, its events, its segment memberships and any
clip generated for that one person, and takes the person out of the clustered segments they were
in (``segments_forget_viewer``: centroids and words recomputed, a segment under k merged).
"""
import json
import re

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Clip, Event, Organization, Profile, SegmentMembership
from generation.limits import MAX_ATTRIBUTES_BYTES

from .jobs import job_enqueue_task

# Not "." or ".." alone: HTTP clients turn /profiles/. and /profiles/.. into other paths (RFC 3986 removes
# dot segments), so such a viewer could never be read or erased through the API.
EXTERNAL_ID_PATTERN = r"(?!\.\.?$)[A-Za-z0-9._:@-]{1,128}"
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)  # with fullmatch: "$" alone would let a final newline in
EXTERNAL_ID_RULE = "1 to 128 characters of letters, digits and . _ : @ -, but not . or .. alone"

# Bounds on the free-form attributes: enough for real preference data, too small to abuse as storage
# (the whole object is embedded as one short text anyway).
MAX_DEPTH = 4  # the attributes object itself is level 1
MAX_KEYS = 50  # over all levels
MAX_KEY_CHARS = 100

PROFILE_EMBED_TASK = "cpu.profile_embed"


def profile_clean_external_id(*, external_id, field: str = "external_id") -> str:
    """The id as given, or a ValidationError naming ``field`` and the allowed form."""
    if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
        shown = external_id[:40] + "…" if isinstance(external_id, str) and len(external_id) > 40 else external_id
        raise ValidationError({field: f"{field} must be {EXTERNAL_ID_RULE}; got {shown!r}."})
    return external_id


def profile_clean_attributes(*, attributes) -> dict:
    """The attributes object as given, or a ValidationError naming 'attributes' and the bound hit."""
    if not isinstance(attributes, dict):
        raise ValidationError({"attributes": "attributes must be a JSON object, e.g. "
                                             '{"interests": ["hiking"], "style": "minimal"}; '
                                             f"got {type(attributes).__name__}."})
    keys = 0

    def walk(value, depth: int, where: str) -> None:
        nonlocal keys
        if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
            raise ValidationError({"attributes": f"attributes nest at most {MAX_DEPTH} levels deep; "
                                                 f"{where} is deeper."})
        if isinstance(value, dict):
            for key, item in value.items():
                keys += 1
                if keys > MAX_KEYS:
                    raise ValidationError({"attributes": f"attributes may hold at most {MAX_KEYS} keys in all."})
                if not key or len(key) > MAX_KEY_CHARS:
                    raise ValidationError({"attributes": f"attribute keys must be 1 to {MAX_KEY_CHARS} characters; "
                                                         f"{where} has {key[:40]!r}."})
                walk(item, depth + 1, f"{where}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, depth + 1, f"{where}[{index}]")

    walk(attributes, 1, "attributes")
    size = len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValidationError({"attributes": f"attributes may be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON; "
                                             f"got {size}."})
    return attributes


def profile_upsert(*, organization: Organization, external_id: str, attributes) -> tuple[Profile, bool]:
    """Create or replace a viewer's attributes: (profile, created). Embedding follows on a worker."""
    external_id = profile_clean_external_id(external_id=external_id)
    attributes = profile_clean_attributes(attributes=attributes)
    try:
        return _upsert(organization, external_id, attributes)
    except IntegrityError:
        # Two first PUTs of one id raced and the other inserted first: now it is an update.
        return _upsert(organization, external_id, attributes)


@transaction.atomic
def _upsert(organization: Organization, external_id: str, attributes: dict) -> tuple[Profile, bool]:
    profile = Profile.objects.select_for_update().filter(organization=organization, external_id=external_id).first()
    created = profile is None
    if created:
        profile = Profile(organization=organization, external_id=external_id, attributes=attributes)
        profile.full_clean(validate_unique=False, validate_constraints=False)
        profile.save()
    elif profile.attributes != attributes:
        profile.attributes = attributes
        # The old vector no longer describes this viewer; clustering must not use it meanwhile.
        profile.embedding, profile.embedded_at = None, None
        profile.save(update_fields=["attributes", "embedding", "embedded_at", "updated_at"])
    if profile.embedded_at is None:
        # Unchanged and already embedded: nothing to do, so a repeated PUT costs no model time.
        job_enqueue_task(task_name=PROFILE_EMBED_TASK, args=[profile.pk])
    return profile, created


@transaction.atomic
def profile_delete(*, profile: Profile) -> None:
    """Erase a viewer: the profile, its events, its segment memberships, clips made for them alone,
    and their part in the clustered segments they were in (see ``segments_forget_viewer``).

    Per-clip event totals stay: they are anonymous sums that no longer lead back to anyone.
    """
    from .segmentation import segments_forget_viewer

    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    Event.objects.filter(organization_id=profile.organization_id, profile=profile).delete()
    memberships = SegmentMembership.objects.filter(organization_id=profile.organization_id, profile=profile)
    segment_ids = list(memberships.values_list("segment_id", flat=True))
    memberships.delete()
    # A per-viewer clip's prompt is made from this person's preferences: it goes too, with its files.
    own_clips = Clip.objects.filter(organization_id=profile.organization_id, profile=profile)
    names = [name for clip in own_clips for name in (clip.video.name, clip.poster.name) if name]
    own_clips.delete()
    profile.delete()
    segments_forget_viewer(organization_id=profile.organization_id, segment_ids=segment_ids)
    if names:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])


def profile_embed(*, profile_id: int) -> bool:
    """Worker side of an upsert: embed the attributes, then place the viewer in every campaign.

    Safe to run twice; False when there was nothing to do (the profile was erased, or changed again
    meanwhile, in which case the newer upsert's own task does the work).
    """
    from generation.embeddings import embed_attributes, to_list

    from .segmentation import memberships_assign_profile

    seen = Profile.objects.filter(pk=profile_id).values("attributes", "updated_at").first()
    if seen is None:
        return False
    vector = embed_attributes([seen["attributes"]])[0]
    with transaction.atomic():
        # The lock orders this write against a concurrent upsert or erasure of the same viewer.
        profile = Profile.objects.select_for_update().filter(pk=profile_id, updated_at=seen["updated_at"]).first()
        if profile is None:
            return False
        profile.embedding, profile.embedded_at = to_list(vector), timezone.now()
        # update() rather than save(): updated_at marks attribute changes, not embeddings.
        Profile.objects.filter(pk=profile_id).update(embedding=profile.embedding, embedded_at=profile.embedded_at)
        memberships_assign_profile(profile=profile, vector=vector)
    return True
