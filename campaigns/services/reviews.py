"""Review: a person (or a manage-scoped key) approves or rejects a clip once; every decision is kept."""
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.errors import Conflict
from campaigns.models import ApiKey, Clip, Membership, Review

from .webhooks import webhook_clip_event

REVIEWER_ROLES = {Membership.Role.REVIEWER, Membership.Role.ADMIN}


@transaction.atomic
def clip_review(*, clip: Clip, decision: str, note: str = "", user=None, api_key: ApiKey | None = None) -> Clip:
    if decision not in Review.Decision.values:
        raise ValidationError({"decision": f"decision must be one of {', '.join(Review.Decision.values)}; "
                                           f"got {decision!r}."})
    if len(note or "") > 2000:
        raise ValidationError({"note": "note must be at most 2000 characters."})
    if user is not None:
        role = Membership.objects.filter(user=user, organization_id=clip.organization_id).values_list("role", flat=True).first()
        if role not in REVIEWER_ROLES:
            raise PermissionDenied("only reviewers and admins can approve or reject clips.")
        if settings.REVIEW_FORBID_OWN_CAMPAIGN and clip.campaign.created_by_id == user.pk:
            raise PermissionDenied("this organization does not allow reviewing clips of your own campaign.")
    clip = Clip.objects.select_for_update().get(pk=clip.pk)
    if clip.status != Clip.Status.PENDING_REVIEW:
        last = clip.reviews.select_related("reviewer", "api_key").first()
        who = last.decided_by if last else "someone"
        raise Conflict(f"this clip was already {clip.status} by {who}; a decision is final.",
                       code="already_decided", details={"status": clip.status, "decided_by": who})
    clip.status = Clip.Status.APPROVED if decision == Review.Decision.APPROVE else Clip.Status.REJECTED
    clip.decided_at = timezone.now()
    clip.save(update_fields=["status", "decided_at"])
    Review.objects.create(organization_id=clip.organization_id, clip=clip, reviewer=user, api_key=api_key,
                          decision=decision, note=note or "")
    webhook_clip_event(clip=clip, type=f"clip.{clip.status}")  # clip.approved / clip.rejected, after commit
    return clip
