"""Segments of a campaign's audience, on CPU workers: centroids, k-means, and who belongs where.

Two ways a campaign gets segments (see ``campaign_create``):
- marketer-defined: each segment's attributes are embedded like a profile's (``segments_embed``,
  task ``cpu.segments_embed``) and the organization's embedded profiles join the nearest one;
- ``segments: k``: a SEGMENT_PROFILES job (task ``cpu.campaign_segment``) clusters the
  organization's profile embeddings and names each cluster by its members' common attributes.
After either, a new or changed profile joins its nearest segment as soon as it is embedded
(``memberships_assign_profile``, called by ``profile_embed``).

Model and scikit-learn imports happen inside these functions, which only workers run.
"""
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, Profile, Segment, SegmentMembership
from generation.personalization import GENERAL_SEGMENT

from .jobs import JobHandle

# Rows per round trip when reading embeddings or writing memberships: bounded memory per batch.
BATCH = 1000


def _vectors(rows: list[list[float]]):
    import numpy as np

    return np.asarray(rows, dtype=np.float32)


def segment_text(*, name: str, attributes: dict) -> str:
    """What a segment is embedded from: its attributes as a profile's, or its name when it has none."""
    from generation.embeddings import profile_text

    return profile_text(attributes) or name


def _campaigns_to_assign(organization_id: int):
    # Paused and draft campaigns keep their memberships up to date too, so that they serve the right
    # clips the moment they go (back) live; archived ones are done for good.
    return Campaign.objects.filter(organization_id=organization_id).exclude(status=Campaign.Status.ARCHIVED)


def _centroids_by_campaign(organization_id: int, campaign_ids=None) -> dict[int, tuple[list[int], object]]:
    """campaign id → (segment ids, centroid matrix), for campaigns whose segments are all embedded."""
    segments = Segment.objects.filter(organization_id=organization_id)
    if campaign_ids is None:
        segments = segments.filter(campaign__in=_campaigns_to_assign(organization_id))
    else:
        segments = segments.filter(campaign_id__in=campaign_ids)
    grouped: dict[int, list[tuple[int, list | None]]] = defaultdict(list)
    for seg_id, campaign_id, centroid in segments.order_by("campaign_id", "position", "id").values_list(
            "id", "campaign_id", "centroid"):
        grouped[campaign_id].append((seg_id, centroid))
    ready = {}
    for campaign_id, items in grouped.items():
        if all(centroid is not None for _, centroid in items):  # else segments_embed has not run yet
            ready[campaign_id] = ([seg_id for seg_id, _ in items], _vectors([c for _, c in items]))
    return ready


def _write_memberships(*, organization_id: int, campaign_id: int, placements: dict[int, tuple[int, float]]) -> None:
    """Upsert profile → (segment, distance) for one campaign; a viewer whose segment changed loses
    their remembered clip (it belonged to the old segment). Call inside a transaction."""
    existing = {
        m.profile_id: m for m in SegmentMembership.objects.filter(
            campaign_id=campaign_id, profile_id__in=list(placements)).only("id", "profile_id", "segment_id", "clip_id")
    }
    changed, new = [], []
    for profile_id, (segment_id, distance) in placements.items():
        membership = existing.get(profile_id)
        if membership is None:
            new.append(SegmentMembership(organization_id=organization_id, profile_id=profile_id,
                                         campaign_id=campaign_id, segment_id=segment_id, distance=distance))
        elif membership.segment_id != segment_id or abs(membership.distance - distance) > 1e-6:
            if membership.segment_id != segment_id:
                membership.clip_id = None
            membership.segment_id, membership.distance = segment_id, distance
            changed.append(membership)
    if changed:
        SegmentMembership.objects.bulk_update(changed, ["segment", "distance", "clip"], batch_size=BATCH)
    if new:
        # A concurrent task may have placed the same viewer a moment ago: keep theirs.
        SegmentMembership.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)


def memberships_assign_profile(*, profile: Profile, vector) -> int:
    """Place one embedded viewer in the nearest segment of each campaign; the count of campaigns."""
    from generation.segmentation import nearest

    placed = 0
    for campaign_id, (segment_ids, centroids) in _centroids_by_campaign(profile.organization_id).items():
        index, distance = nearest(vector, centroids)
        _write_memberships(organization_id=profile.organization_id, campaign_id=campaign_id,
                           placements={profile.pk: (segment_ids[index], distance)})
        placed += 1
    return placed


def _embedded_profiles(organization_id: int):
    """(ids, attributes, embedding matrix) of the organization's embedded profiles, in id order."""
    ids, attributes, rows = [], [], []
    queryset = (Profile.objects.filter(organization_id=organization_id, embedding__isnull=False)
                .order_by("id").values_list("id", "attributes", "embedding"))
    for profile_id, attrs, embedding in queryset.iterator(chunk_size=BATCH):
        ids.append(profile_id)
        attributes.append(attrs)
        rows.append(embedding)
    return ids, attributes, _vectors(rows)


def profiles_embed_missing(*, organization_id: int, handle: JobHandle | None = None,
                           progress_span: tuple[float, float] = (0.0, 1.0)) -> int:
    """Embed every profile of the organization that has no (current) embedding; how many."""
    from generation.embeddings import embed_attributes, to_list

    start, end = progress_span
    pending = Profile.objects.filter(organization_id=organization_id, embedding__isnull=True)
    total = pending.count()
    done, last_id = 0, 0
    while True:
        # An id cursor, so the loop ends even if some viewer keeps changing while it runs.
        batch = list(pending.filter(id__gt=last_id).order_by("id").values("id", "attributes", "updated_at")[:BATCH])
        if not batch:
            return done
        last_id = batch[-1]["id"]
        vectors = embed_attributes([row["attributes"] for row in batch])
        now = timezone.now()
        for row, vector in zip(batch, vectors, strict=True):
            # The updated_at filter skips a viewer whose attributes changed meanwhile: the upsert
            # that changed them queued a task that embeds the new ones.
            Profile.objects.filter(pk=row["id"], updated_at=row["updated_at"]).update(
                embedding=to_list(vector), embedded_at=now)
        done += len(batch)
        if handle is not None:
            handle.progress(start + (end - start) * min(1.0, done / max(total, 1)),
                            f"embedded {done}/{max(total, done)} profiles")


def _assign_all(*, campaign: Campaign, segment_ids: list[int], centroids, ids: list[int], vectors,
                labels=None) -> None:
    """Memberships for many profiles of one campaign, batch by batch, each batch under row locks."""
    import numpy as np

    from generation.segmentation import nearest_many

    if labels is None:
        labels, distances = nearest_many(vectors, centroids)
    else:
        distances = 1.0 - np.einsum("ij,ij->i", vectors, centroids[labels]) if len(ids) else np.zeros(0)
    for begin in range(0, len(ids), BATCH):
        batch = ids[begin:begin + BATCH]
        with transaction.atomic():
            # Locking the rows keeps an erasure from deleting a viewer between this read and the insert.
            alive = set(Profile.objects.select_for_update().filter(pk__in=batch).values_list("id", flat=True))
            placements = {pid: (segment_ids[int(labels[begin + i])], float(distances[begin + i]))
                          for i, pid in enumerate(batch) if pid in alive}
            _write_memberships(organization_id=campaign.organization_id, campaign_id=campaign.pk,
                               placements=placements)


def segments_embed(*, campaign_id: int) -> int:
    """Centroids for a campaign's marketer-defined segments, a suggested setting for each that has
    none, then its viewers placed; how many placed."""
    from generation.embeddings import embed_texts, to_list

    from .segments import segment_settings_suggest

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    segments = list(Segment.objects.filter(organization_id=campaign.organization_id, campaign=campaign))
    if not segments:
        return 0
    vectors = embed_texts([segment_text(name=s.name, attributes=s.attributes) for s in segments])
    for segment, vector in zip(segments, vectors, strict=True):
        segment.centroid = to_list(vector)
    Segment.objects.bulk_update(segments, ["centroid"])
    segment_settings_suggest(segments=segments, vectors=vectors)  # those the marketer left without one
    ids, _, profile_vectors = _embedded_profiles(campaign.organization_id)
    _assign_all(campaign=campaign, segment_ids=[s.pk for s in segments], centroids=vectors, ids=ids,
                vectors=profile_vectors)
    return len(ids)


def campaign_segment_run(handle: JobHandle) -> dict:
    """The SEGMENT_PROFILES job: k-means over the organization's profiles into named segments.

    1. embed profiles that are not yet embedded; 2. cluster (fewer profiles than k: as many
    segments as there are distinct profiles; none: one 'General' segment); 3. replace the
    campaign's segments and memberships in one transaction (a redelivered job starts over).
    """
    from generation.embeddings import embed_texts, to_list
    from generation.segmentation import segment
    from generation.setting_suggest import suggest_settings

    job = handle.job
    campaign = Campaign.objects.get(pk=job.campaign_id)
    k = int(job.params.get("k") or campaign.segment_count or 1)

    # 1. Embeddings.
    handle.progress(0.0, "embedding profiles", force=True)
    embedded_now = profiles_embed_missing(organization_id=campaign.organization_id, handle=handle,
                                          progress_span=(0.0, 0.6))
    ids, attributes, vectors = _embedded_profiles(campaign.organization_id)

    # 2. Clusters, named by their members' most common attribute values.
    handle.progress(0.6, f"clustering {len(ids)} profiles into up to {k} segments", force=True)
    clusters = segment(vectors, attributes, k, seed=campaign.pk) if ids else []
    if clusters:
        rows = [(c.name, c.attributes, c.centroid) for c in clusters]
    else:
        rows = [(GENERAL_SEGMENT, {}, embed_texts([GENERAL_SEGMENT])[0])]
    handle.progress(0.8, f"saving {len(rows)} segments", force=True)

    # 3. Segments and memberships.
    import numpy as np

    labels = np.zeros(len(ids), dtype=np.int64)
    for index, cluster in enumerate(clusters):
        labels[cluster.members] = index
    handle.check_cancelled()
    centroids = np.stack([np.asarray(centroid, dtype=np.float32) for _, _, centroid in rows])
    # Every clustered segment gets the catalogue setting nearest to its centroid.
    phrases = [entry.phrase for entry in suggest_settings(centroids)]
    with transaction.atomic():
        Segment.objects.filter(campaign=campaign).delete()
        segments = Segment.objects.bulk_create([
            Segment(organization_id=campaign.organization_id, campaign=campaign, name=name[:200],
                    attributes=attrs, centroid=to_list(centroid), position=position,
                    setting=phrase, setting_source=Segment.SettingSource.SUGGESTED)
            for position, ((name, attrs, centroid), phrase) in enumerate(zip(rows, phrases, strict=True))
        ])
    _assign_all(campaign=campaign, segment_ids=[s.pk for s in segments], centroids=centroids, ids=ids,
                vectors=vectors, labels=labels if clusters else None)
    return {
        "k": k,
        "segments": [{"id": s.pk, "name": s.name, "setting": s.setting,
                      "size": len(c.members) if clusters else len(ids)}
                     for s, c in zip(segments, clusters or [None], strict=True)],
        "profiles": len(ids),
        "embedded_now": embedded_now,
    }
