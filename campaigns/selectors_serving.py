"""Reads for personalization and serving: a viewer's segments, and how a campaign's variants perform.

Performance figures come from the per-clip counters (``Clip.impressions/clicks/completes``) that
events bump, never from counting Event rows, so the dashboard's stats cost a handful of queries
whatever the traffic.
"""
from django.db.models import Count, QuerySet

from campaigns.models import Campaign, Clip, Profile, Segment, SegmentMembership


def profile_memberships(*, profile: Profile) -> QuerySet[SegmentMembership]:
    """The viewer's segment in each campaign, oldest campaign first."""
    return (SegmentMembership.objects.filter(organization_id=profile.organization_id, profile=profile)
            .select_related("segment").order_by("campaign_id"))


def rate(part: int, impressions: int) -> float | None:
    """The platform's one definition of a rate per impression (click-through, completion): a
    fraction, or None before the first impression."""
    return part / impressions if impressions else None


# The viewing funnel, in order: each clip counter from an impression to a click.
FUNNEL = ("impressions", "starts", "first_quartiles", "midpoints", "third_quartiles", "completes", "clicks")


def _rates(counts: dict) -> dict:
    # The API's rates are 0.0, not null, before the first impression (its contract: numbers).
    impressions = counts["impressions"]
    return {**{key: counts[key] for key in FUNNEL},
            "ctr": round(rate(counts["clicks"], impressions) or 0.0, 4),
            "completion_rate": round(rate(counts["completes"], impressions) or 0.0, 4)}


def campaign_stats(*, campaign: Campaign) -> dict:
    """Per segment and per clip: viewers, the viewing funnel's counts (impressions, starts,
    first_quartiles, midpoints, third_quartiles, completes, clicks), ctr. Four queries.

    ```
    {"campaign_id": 7,
     "totals": {"viewers", *FUNNEL, "ctr", "completion_rate"},
     "segments": [{"id", "name", "position", "attributes", "viewers", *FUNNEL, "ctr", "completion_rate",
                   "clips": [{"id", "variant", "status", "viewers", *FUNNEL, "ctr",
                              "completion_rate"}, ...]}, ...],
     "unsegmented_clips": [... clips with no segment, same shape ...]}
    ```
    A segment's figures are the sums over its clips (including clips not approved any more);
    ``viewers`` of a segment are its members, of a clip the members it is remembered for.
    """
    org_id = campaign.organization_id
    segments = list(Segment.objects.filter(organization_id=org_id, campaign=campaign).order_by("position", "id")
                    .values("id", "name", "position", "attributes"))
    clips = list(Clip.objects.filter(organization_id=org_id, campaign=campaign).order_by("segment_id", "variant", "id")
                 .values("id", "segment_id", "variant", "status", *FUNNEL))
    members = SegmentMembership.objects.filter(organization_id=org_id, campaign=campaign)
    viewers_by_segment = dict(members.values_list("segment_id").annotate(n=Count("id")).order_by())
    viewers_by_clip = dict(members.filter(clip__isnull=False).values_list("clip_id").annotate(n=Count("id"))
                           .order_by())

    clip_rows: dict[int | None, list[dict]] = {}
    for clip in clips:
        row = {"id": clip["id"], "variant": clip["variant"], "status": clip["status"],
               "viewers": viewers_by_clip.get(clip["id"], 0),
               **_rates(clip)}
        clip_rows.setdefault(clip["segment_id"], []).append(row)

    def summed(rows: list[dict]) -> dict:
        return _rates({key: sum(r[key] for r in rows) for key in FUNNEL})

    segment_rows = []
    for seg in segments:
        rows = clip_rows.get(seg["id"], [])
        segment_rows.append({**seg, "viewers": viewers_by_segment.get(seg["id"], 0), **summed(rows), "clips": rows})
    all_rows = [row for rows in clip_rows.values() for row in rows]
    return {
        "campaign_id": campaign.pk,
        "totals": {"viewers": sum(viewers_by_segment.values()), **summed(all_rows)},
        "segments": segment_rows,
        "unsegmented_clips": clip_rows.get(None, []),
    }
