"""Segments of a campaign's audience, on CPU workers: centroids, k-means, and who belongs where.

Two ways a campaign gets segments (see ``campaign_create``):
- marketer-defined: each segment's attributes are embedded like a profile's (``segments_embed``,
  task ``cpu.segments_embed``) and the organization's embedded profiles join the nearest one;
- ``segments: k``: a SEGMENT_PROFILES job (task ``cpu.campaign_segment``) clusters the
  organization's profile embeddings and names each cluster by its members' common attributes.
After either, a new or changed profile joins its nearest segment as soon as it is embedded
(``memberships_assign_profile``, called by ``profile_embed``).

Clustered segments are k-anonymous (k = ``settings.SEGMENT_MIN_SIZE``): every one holds at least k
viewers and is described only by values at least k of them share, and its setting is suggested from
those words, not from anyone's vector. When a viewer is erased, ``segments_forget_viewer`` takes them
out of what was derived from them (centroid, words, clips whose prompt carried words that no longer
hold) and merges a segment that falls under k into its nearest neighbour.

Model and scikit-learn imports happen inside these functions, which only workers run.
"""
from collections import defaultdict

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.utils import timezone

from campaigns.models import Campaign, Clip, Event, Job, Profile, Segment, SegmentMembership
from generation.personalization import GENERAL_SEGMENT

from .jobs import JobHandle, job_enqueue_task

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

    # 2. Clusters of at least SEGMENT_MIN_SIZE viewers, named by values at least that many share.
    min_size = settings.SEGMENT_MIN_SIZE
    handle.progress(0.6, f"clustering {len(ids)} profiles into up to {k} segments", force=True)
    clusters = segment(vectors, attributes, k, seed=campaign.pk, min_size=min_size) if ids else []
    if len(clusters) == 1 and len(clusters[0].members) < min_size:
        clusters = []  # too few viewers to describe anyone: everyone is in the general segment
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
    # Every clustered segment gets the catalogue setting nearest to its words (k-anonymous values
    # only), not to its centroid: a mean of vectors can still lean towards one viewer.
    phrases = [entry.phrase for entry in suggest_settings(
        embed_texts([segment_text(name=name, attributes=attrs) for name, attrs, _ in rows]))]
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
    if clusters:
        # A viewer erased while this job ran shaped these segments but was never placed in them, so
        # their erasure had no membership to follow: take them out now, as it would have.
        alive = set(Profile.objects.filter(organization_id=campaign.organization_id).values_list("id", flat=True))
        erased = {segments[int(labels[i])].pk for i, profile_id in enumerate(ids) if profile_id not in alive}
        if erased:
            with transaction.atomic():
                segments_forget_viewer(organization_id=campaign.organization_id, segment_ids=sorted(erased))
    return {
        "k": k,
        "segments": _segments_listed(campaign.pk),
        "profiles": len(ids),
        "embedded_now": embedded_now,
        "min_size": min_size,
    }


# --- erasure ---------------------------------------------------------------------------------------

SEGMENTS_REFRESH_TASK = "cpu.segments_refresh"


def _segments_listed(campaign_id: int) -> list[dict]:
    """A campaign's segments as a segmentation job's result lists them: id, name, setting, size."""
    segments = (Segment.objects.filter(campaign_id=campaign_id).order_by("position", "id")
                .annotate(size=models.Count("memberships")))
    return [{"id": s.pk, "name": s.name, "setting": s.setting, "size": s.size} for s in segments]


def _values(attributes: dict) -> set[tuple[str, str]]:
    """(key, value) pairs a segment's attributes say, list items one by one."""
    from generation.embeddings import attributes_key

    pairs = set()
    for key, value in attributes.items():
        for item in (value if isinstance(value, list) else [value]):
            pairs.add((str(key), attributes_key(item)))
    return pairs


def _withdraw_clips(clips, withdrawn: list[int]) -> list[str]:
    """Delete clips and every edit made from them (their pixels came from the same words; events go
    with them), adding their ids to ``withdrawn``; the names of their files, to delete after commit."""
    clips = list(clips)
    frontier = [clip.pk for clip in clips]
    while frontier:
        edits = list(Clip.objects.filter(parent_id__in=frontier).exclude(pk__in=[c.pk for c in clips]))
        clips += edits
        frontier = [clip.pk for clip in edits]
    names = [name for clip in clips for name in (clip.video.name, clip.poster.name, clip.mask.name) if name]
    withdrawn += [clip.pk for clip in clips]
    Clip.objects.filter(pk__in=[clip.pk for clip in clips]).delete()
    return names


def _redescribe(segment: Segment, *, population, taken: set[str], min_size: int) -> bool:
    """Centroid, words and distances of a clustered segment from its current members; True when
    its attributes changed. Fewer than ``min_size`` members: the general segment, embedded by name
    on a worker (``segments_refresh``). ``population()`` gives the attributes of the campaign's
    viewers, read only when a new name is needed (it ranks values against everyone)."""
    import numpy as np

    from generation.segmentation import describe, normalise, unique_name

    rows = list(SegmentMembership.objects.filter(segment=segment).values_list(
        "id", "profile__attributes", "profile__embedding"))
    embedded = [(mid, vector) for mid, _, vector in rows if vector is not None]
    members = [attrs for _, attrs, _ in rows]
    if len(rows) >= min_size:
        attributes = describe(members, None, min_count=min_size)[1]  # the words do not depend on the population
        centroid = normalise(np.asarray([v for _, v in embedded], dtype=np.float32).mean(axis=0)) if embedded else None
    else:
        attributes, centroid, embedded = {}, None, []
    changed = attributes != segment.attributes
    if changed:
        name = describe(members, population(), min_count=min_size)[0] if attributes else GENERAL_SEGMENT
        segment.name = unique_name(name[:200], taken)
        segment.attributes = attributes
        if segment.setting_source == Segment.SettingSource.SUGGESTED:
            segment.setting, segment.setting_source = "", ""  # suggested again from the new words
    segment.centroid = centroid.tolist() if centroid is not None else None
    segment.save(update_fields=["name", "attributes", "centroid", "setting", "setting_source"])
    if centroid is not None and embedded:
        distances = 1.0 - np.asarray([v for _, v in embedded], dtype=np.float32) @ centroid
        _distances_write([mid for mid, _ in embedded], [float(d) for d in distances])
    return changed


def _distances_write(membership_ids: list[int], distances: list[float]) -> None:
    """Set many memberships' distances: one statement on PostgreSQL (bulk_update's CASE per row
    costs about a millisecond a row in Django alone), bulk_update elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {SegmentMembership._meta.db_table} AS m SET distance = v.d "
                "FROM unnest(%s::bigint[], %s::float8[]) AS v(id, d) WHERE m.id = v.id",
                [membership_ids, distances])
        return
    rows = [SegmentMembership(pk=mid, distance=d) for mid, d in zip(membership_ids, distances, strict=True)]
    SegmentMembership.objects.bulk_update(rows, ["distance"], batch_size=BATCH)


def segments_forget_viewer(*, organization_id: int, segment_ids: list[int]) -> None:
    """Take an erased viewer (whose memberships are already deleted) out of the clustered segments
    they were in. Call inside the erasure's transaction.

    For each such segment: centroid and words recomputed from the members left (words held by
    fewer than SEGMENT_MIN_SIZE of them go, and with them the name that said them). A segment left
    with fewer members merges into the segment of the same campaign whose centroid is nearest
    (its viewers move, get a fresh variant, and its clips are withdrawn); the merged-into segment is
    recomputed too. Clips of a segment whose words lost a value are withdrawn: their prompt and
    pixels were made from words that no longer describe k viewers. Segmentation jobs' results show
    the segments as they are now. Marketer-defined segments are the marketer's words: untouched.
    """
    import numpy as np

    from .webhooks import webhook_payloads_after_erasure

    min_size = settings.SEGMENT_MIN_SIZE
    campaign_ids = set(Segment.objects.filter(organization_id=organization_id, pk__in=segment_ids,
                                              campaign__segment_count__isnull=False)
                       .values_list("campaign_id", flat=True))
    files: list[str] = []
    for campaign_id in sorted(campaign_ids):
        # Locks every segment of the campaign: erasures and re-segmentation of it take turns.
        segments = list(Segment.objects.select_for_update().filter(campaign_id=campaign_id).order_by("position", "id"))
        read: list[list[dict]] = []

        def population(campaign_id=campaign_id, read=read) -> list[dict]:
            if not read:
                read.append(list(SegmentMembership.objects.filter(campaign_id=campaign_id)
                                 .values_list("profile__attributes", flat=True)))
            return read[0]

        touched = [s for s in segments if s.pk in set(segment_ids)]
        withdrawn: list[int] = []
        reworded = False
        for segment in touched:
            if segment not in segments:
                continue  # merged away already
            others = [s for s in segments if s.pk != segment.pk]
            size = SegmentMembership.objects.filter(segment=segment).count()
            taken = {s.name for s in others}
            if size >= min_size or not others:
                before = _values(segment.attributes)
                reworded |= _redescribe(segment, population=population, taken=taken, min_size=min_size)
                if before - _values(segment.attributes):
                    files += _withdraw_clips(list(Clip.objects.filter(segment=segment)), withdrawn)
                continue
            # Under k: merge into the nearest segment.
            usable = [s for s in others if s.centroid is not None]
            if usable and segment.centroid is not None:
                here = np.asarray(segment.centroid, dtype=np.float32)
                target = usable[int(np.argmax([here @ np.asarray(s.centroid, dtype=np.float32) for s in usable]))]
            else:
                target = others[0]
            SegmentMembership.objects.filter(segment=segment).update(segment=target, clip=None)
            Event.objects.filter(segment=segment).update(segment=target)
            files += _withdraw_clips(list(Clip.objects.filter(segment=segment)), withdrawn)
            segment.delete()
            segments.remove(segment)
            reworded = True
            _redescribe(target, population=population, taken={s.name for s in segments if s.pk != target.pk},
                        min_size=min_size)
        for position, segment in enumerate(segments):
            if segment.position != position:
                Segment.objects.filter(pk=segment.pk).update(position=position)
        listed = _segments_listed(campaign_id)
        for job in Job.objects.filter(campaign_id=campaign_id, kind=Job.Kind.SEGMENT_PROFILES).only("id", "result"):
            if isinstance(job.result, dict) and "segments" in job.result:
                Job.objects.filter(pk=job.pk).update(result={**job.result, "segments": listed})
        if reworded:  # else the stored bodies say nothing that changed
            webhook_payloads_after_erasure(organization_id=organization_id, campaign_id=campaign_id,
                                           clip_ids=withdrawn)
        if any(s.centroid is None or not s.setting for s in segments):
            job_enqueue_task(task_name=SEGMENTS_REFRESH_TASK, args=[campaign_id])
    if files:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in files])


def segments_refresh(*, campaign_id: int) -> int:
    """Worker side of an erasure: a clustered segment left without a centroid (the general one)
    is embedded by its words, settings left empty are suggested again, and if any centroid was
    missing the organization's embedded viewers are placed again; how many segments were embedded."""
    from generation.embeddings import embed_texts, to_list

    from .segments import segment_settings_fill

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    segments = list(Segment.objects.filter(campaign=campaign).order_by("position", "id"))
    missing = [s for s in segments if s.centroid is None]
    if missing:
        vectors = embed_texts([segment_text(name=s.name, attributes=s.attributes) for s in missing])
        for segment, vector in zip(missing, vectors, strict=True):
            # centroid=None in the filter: a re-segmentation meanwhile keeps its own.
            Segment.objects.filter(pk=segment.pk, centroid__isnull=True).update(centroid=to_list(vector))
    segment_settings_fill(segments=segments)
    if missing:
        ready = _centroids_by_campaign(campaign.organization_id, [campaign.pk]).get(campaign.pk)
        if ready is not None:
            ids, _, vectors = _embedded_profiles(campaign.organization_id)
            _assign_all(campaign=campaign, segment_ids=ready[0], centroids=ready[1], ids=ids, vectors=vectors)
    return len(missing)
