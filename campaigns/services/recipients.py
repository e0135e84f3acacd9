"""Recipients in bulk: a CSV of viewers in, one personal landing page per viewer out.

``recipients_upload`` (web process) checks the file's shape at once (UTF-8, a header with
``external_id``, a bounded number of rows), stores it and queues an IMPORT_RECIPIENTS job;
``recipients_import_run`` (cpu worker) validates every row, upserts the good ones in bulk with
their embeddings (one batched MiniLM pass per chunk, each distinct preference text embedded once),
places them in the nearest segment of every campaign, as ``profile_embed`` does for one viewer,
and gives each a page in the uploaded campaign. Bad rows are reported by line and reason in the
job's result; good rows still go in.

``recipients_export_rows`` is the other way: every placed viewer of a campaign with their segment,
their clip and their page's token. It settles what the page would settle on a first visit (a page
for every viewer, a variant for every viewer who has none yet), so the CSV and the page agree.
"""
import csv
import io
import secrets
import uuid
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.errors import Conflict, TooLarge
from campaigns.models import Campaign, Clip, Job, Profile, RecipientPage, Segment, SegmentMembership

from .jobs import JobHandle, job_create
from .profiles import profile_clean_attributes, profile_clean_external_id

ID_COLUMN = "external_id"
LIST_COLUMN = "interests"  # "a;b;c" → ["a", "b", "c"]
LIST_SEPARATOR = ";"
# Rows per transaction: one embedding pass, one upsert, one placement and one page insert each.
CHUNK = 1000
# A job's result keeps this many bad rows (the count of all of them beside).
MAX_REPORTED_ERRORS = 1000
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters


def _decode(data: bytes) -> str:
    try:
        # utf-8-sig: spreadsheets save UTF-8 CSVs with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValidationError({"file": ("the file is not UTF-8 text (line %(line)d, byte %(byte)d); save the CSV "
                                          "as UTF-8.") % {"line": line, "byte": exc.start}})


def recipients_parse(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(columns, [(line, values), ...]) of a CSV text; a ValidationError naming ``file`` when its
    header cannot be used. Blank lines are skipped; a row's line is where it starts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise ValidationError({"file": ("the file is empty; upload a CSV with a header row that has an "
                                              "%(column)s column.") % {"column": ID_COLUMN}})
        line = reader.line_num + 1
        for values in reader:
            if values:
                rows.append((line, values))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ValidationError({"file": ("the CSV cannot be read at line %(line)d: %(error)s.")
                                       % {"line": reader.line_num, "error": exc}})
    columns = [name.strip() for name in header]
    if ID_COLUMN not in columns:
        raise ValidationError({"file": ("the header row must have an %(column)s column; it has: %(columns)s.")
                                       % {"column": ID_COLUMN, "columns": ", ".join(columns)[:300] or "-"}})
    for index, name in enumerate(columns, start=1):
        if not name:
            raise ValidationError({"file": ("column %(index)d of the header row has no name; every column "
                                              "needs one.") % {"index": index}})
        if columns.count(name) > 1:
            raise ValidationError({"file": ("the header row names %(name)s twice; every column name must be "
                                              "unique.") % {"name": name[:100]}})
    return columns, rows


def recipient_row_clean(*, columns: list[str], values: list[str]) -> tuple[str, dict]:
    """(external_id, attributes) of one data row, or a ValidationError saying what is wrong."""
    if len(values) != len(columns):
        raise ValidationError(("the row has %(got)d fields; the header has %(want)d.")
                              % {"got": len(values), "want": len(columns)})
    external_id, attributes = "", {}
    for name, value in zip(columns, values, strict=True):
        value = value.strip()
        if name == ID_COLUMN:
            external_id = value
        elif name == LIST_COLUMN and value:
            items = [item.strip() for item in value.split(LIST_SEPARATOR)]
            attributes[name] = [item for item in items if item]
        elif value:
            attributes[name] = value
    profile_clean_external_id(external_id=external_id)
    profile_clean_attributes(attributes=attributes)
    return external_id, attributes


def _campaign_can_take_recipients(campaign: Campaign) -> None:
    if campaign.status == Campaign.Status.ARCHIVED:
        raise Conflict(("this campaign is archived; recipients can only be added to a campaign in use."),
                       code="campaign_archived", details={"status": campaign.status})
    if not Segment.objects.filter(organization_id=campaign.organization_id, campaign=campaign).exists():
        raise Conflict(("this campaign has no segments yet; upload recipients once its segments are ready."),
                       code="no_segments", details={"segments": 0})


def recipients_upload(*, campaign: Campaign, upload: UploadedFile, user=None) -> Job:
    """Check a recipients CSV's shape, store it and queue its import; the IMPORT_RECIPIENTS job.

    413 past RECIPIENTS_MAX_BYTES; 400 naming ``file`` for a file that is not UTF-8, has no
    ``external_id`` column, no rows or more than RECIPIENTS_MAX_ROWS; 409 for a campaign without
    segments. Rows themselves are judged by the job, one by one.
    """
    limit = settings.RECIPIENTS_MAX_BYTES
    if upload.size > limit:
        raise TooLarge(("the file is %(size).1f MB; the limit is %(limit).0f MB.")
                       % {"size": upload.size / 1e6, "limit": limit / 1e6},
                       details={"file": "too large", "limit_bytes": limit})
    _campaign_can_take_recipients(campaign)
    upload.seek(0)
    data = upload.read()
    _columns, rows = recipients_parse(_decode(data))
    if not rows:
        raise ValidationError({"file": ("the file has a header row but no recipients; add one row per "
                                          "recipient.")})
    if len(rows) > settings.RECIPIENTS_MAX_ROWS:
        raise ValidationError({"file": ("the file has %(rows)d recipients; at most %(limit)d fit in one upload. "
                                          "Split it into several files.")
                                       % {"rows": len(rows), "limit": settings.RECIPIENTS_MAX_ROWS}})
    name = default_storage.save(
        f"org-{campaign.organization_id}/campaigns/{campaign.pk}/recipients/{uuid.uuid4().hex}.csv",
        ContentFile(data))
    try:
        return job_create(organization=campaign.organization, kind=Job.Kind.IMPORT_RECIPIENTS, campaign=campaign,
                          user=user, params={"file": name, "filename": (upload.name or "")[:200], "rows": len(rows)})
    except Exception:
        default_storage.delete(name)  # no job: no stored file either
        raise


def _chunks(items: list, size: int):
    for begin in range(0, len(items), size):
        yield items[begin:begin + size]


def _ready_centroids(campaign: Campaign) -> dict:
    """Every campaign's (segment ids, centroids), the uploaded one's segments embedded first if need be."""
    from .segmentation import _centroids_by_campaign, segments_embed

    if campaign.pk not in _centroids_by_campaign(campaign.organization_id, [campaign.pk]):
        segments_embed(campaign_id=campaign.pk)
    own = _centroids_by_campaign(campaign.organization_id, [campaign.pk])
    if campaign.pk not in own:
        raise ValidationError(("this campaign has no segments any more; nothing was imported."))
    return {**_centroids_by_campaign(campaign.organization_id), **own}


def recipients_import_run(handle: JobHandle) -> dict:
    """The IMPORT_RECIPIENTS job: 1. read and judge every row; 2. per chunk of CHUNK good rows:
    embed what changed, upsert, place in every campaign's segments, give each a page; 3. drop the
    stored file. A redelivered job starts over and ends in the same state (upserts, not inserts).

    The file goes when the job is done with it: succeeded, failed or cancelled; it stays for a retry
    after a transient error, and for the worker that took the job over (JobLost)."""
    from .jobs import TRANSIENT_ERRORS

    try:
        result = _import(handle)
    except TRANSIENT_ERRORS:
        raise
    except Exception:  # JobCancelled included
        default_storage.delete(handle.job.params["file"])
        raise
    default_storage.delete(handle.job.params["file"])  # personal data, and it has served its purpose
    return result


def _import(handle: JobHandle) -> dict:
    import numpy as np

    from generation.embeddings import embed_texts, profile_text, to_list
    from generation.segmentation import nearest_many

    from .segmentation import _write_memberships

    job = handle.job
    campaign = Campaign.objects.get(pk=job.campaign_id)
    org_id = campaign.organization_id

    # 1. Rows.
    handle.progress(0.0, "reading the file", force=True)
    with default_storage.open(job.params["file"], "rb") as fh:
        columns, rows = recipients_parse(_decode(fh.read()))
    good: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    errors: list[dict] = []
    bad = 0

    def reject(line: int, external_id: str, reason: str) -> None:
        nonlocal bad
        bad += 1
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.append({"line": line, "external_id": external_id[:128], "reason": reason})

    for line, values in rows:
        try:
            external_id, attributes = recipient_row_clean(columns=columns, values=values)
        except ValidationError as exc:
            guess = values[columns.index(ID_COLUMN)].strip() if len(values) > columns.index(ID_COLUMN) else ""
            reject(line, guess, " ".join(exc.messages))
            continue
        if external_id in good:
            reject(line, external_id, ("%(id)s already appears on line %(line)d; only that row is kept.")
                   % {"id": external_id, "line": first_line[external_id]})
            continue
        good[external_id], first_line[external_id] = attributes, line
    handle.progress(0.05, f"{len(good)} good rows, {bad} bad; placing them", force=True)

    # 2. Profiles, placements and pages, chunk by chunk.
    centroids = _ready_centroids(campaign)
    created = updated = unchanged = embedded = 0
    ids = list(good)
    for number, chunk in enumerate(_chunks(ids, CHUNK), start=1):
        existing = {row[0]: row[1:] for row in Profile.objects.filter(organization_id=org_id, external_id__in=chunk)
                    .values_list("external_id", "id", "attributes", "embedding")}
        # Each distinct preference text once; an unchanged, embedded viewer keeps their vector.
        texts = {}
        for external_id in chunk:
            old = existing.get(external_id)
            if old is None or old[1] != good[external_id] or old[2] is None:
                texts.setdefault(profile_text(good[external_id]), None)
        if texts:
            for text, vector in zip(texts, embed_texts(list(texts)), strict=True):
                texts[text] = (vector, to_list(vector))
        embedded += len(texts)
        now = timezone.now()
        upserts, vectors = [], []
        for external_id in chunk:
            old = existing.get(external_id)
            if old is not None and old[1] == good[external_id] and old[2] is not None:
                vectors.append(np.asarray(old[2], dtype=np.float32))
                unchanged += 1
                continue
            vector, as_list = texts[profile_text(good[external_id])]
            vectors.append(vector)
            upserts.append(Profile(organization_id=org_id, external_id=external_id, attributes=good[external_id],
                                   embedding=as_list, embedded_at=now))
            if old is None:
                created += 1
            else:
                updated += 1
        with transaction.atomic():
            Profile.objects.bulk_create(
                upserts, update_conflicts=True, unique_fields=["organization", "external_id"],
                update_fields=["attributes", "embedding", "embedded_at", "updated_at"])
            # Locking the rows keeps an erasure from deleting a viewer between here and the inserts
            # (the upserted ones are locked already).
            pks = dict(Profile.objects.select_for_update().filter(organization_id=org_id, external_id__in=chunk)
                       .values_list("external_id", "id"))
            present = [i for i, external_id in enumerate(chunk) if external_id in pks]
            matrix = np.stack([vectors[i] for i in present]) if present else np.zeros((0, 1), dtype=np.float32)
            for campaign_id, (segment_ids, segment_centroids) in centroids.items():
                labels, distances = nearest_many(matrix, segment_centroids)
                _write_memberships(organization_id=org_id, campaign_id=campaign_id, placements={
                    pks[chunk[i]]: (segment_ids[int(label)], float(distance))
                    for i, label, distance in zip(present, labels, distances, strict=True)})
            RecipientPage.objects.bulk_create(
                [RecipientPage(organization_id=org_id, campaign=campaign, profile_id=pks[chunk[i]],
                               token=secrets.token_urlsafe(TOKEN_BYTES)) for i in present],
                batch_size=CHUNK, ignore_conflicts=True)  # a viewer who has a page keeps its link
        done = min(len(ids), number * CHUNK)
        handle.progress(0.05 + 0.95 * done / max(len(ids), 1), f"placed {done}/{len(ids)} recipients",
                        data={"done": done, "total": len(ids), "bad": bad})

    return {"rows": len(rows), "imported": len(good), "created": created, "updated": updated,
            "unchanged": unchanged, "embedded_texts": embedded, "bad_rows": bad, "errors": errors,
            "errors_truncated": bad > len(errors)}


# --- the export ----------------------------------------------------------------------------------

def _pages_ensure(campaign: Campaign) -> None:
    """A page for every placed viewer of the campaign (viewers placed through the API have none yet)."""
    missing = (SegmentMembership.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
               .exclude(profile__recipient_pages__campaign=campaign).values_list("profile_id", flat=True))
    for chunk in _chunks(list(missing), CHUNK):
        RecipientPage.objects.bulk_create(
            [RecipientPage(organization_id=campaign.organization_id, campaign=campaign, profile_id=profile_id,
                           token=secrets.token_urlsafe(TOKEN_BYTES)) for profile_id in chunk],
            ignore_conflicts=True)


def _variants_settle(campaign: Campaign) -> None:
    """Remember a variant for every placed viewer who has no valid one, chosen as their first visit
    would choose it (services.serving): their segment's approved clips, else the fallback's."""
    from .serving import thompson_choice

    approved = list(Clip.objects.filter(organization_id=campaign.organization_id, campaign=campaign,
                                        status=Clip.Status.APPROVED)
                    .order_by(F("segment__position").asc(nulls_last=True), "segment_id", "id").only("id", "segment_id", "impressions", "clicks"))
    if not approved:
        return
    by_segment: dict[int | None, list[Clip]] = defaultdict(list)
    for clip in approved:
        by_segment[clip.segment_id].append(clip)
    # Serving's fallback: the approved clips of the first segment by position (clips without one last).
    fallback = next(iter(by_segment.values()))
    memberships = SegmentMembership.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
    changed = []
    for membership in memberships.only("id", "segment_id", "clip_id").iterator(chunk_size=CHUNK):
        candidates = by_segment.get(membership.segment_id) or fallback
        if membership.clip_id not in {clip.id for clip in candidates}:
            membership.clip_id = thompson_choice(candidates).id
            changed.append(membership)
    SegmentMembership.objects.bulk_update(changed, ["clip"], batch_size=CHUNK)


def recipients_export_rows(*, campaign: Campaign) -> list[tuple[str, str, int | None, str | None]]:
    """(external_id, segment name, clip id or None, page token or None when revoked) for every
    placed viewer of the campaign, by external_id."""
    with transaction.atomic():
        _pages_ensure(campaign)
        _variants_settle(campaign)
    pages = dict(RecipientPage.objects.filter(organization_id=campaign.organization_id, campaign=campaign,
                                              revoked_at__isnull=True).values_list("profile_id", "token"))
    rows = (SegmentMembership.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
            .order_by("profile__external_id")
            .values_list("profile_id", "profile__external_id", "segment__name", "clip_id"))
    return [(external_id, segment, clip_id, pages.get(profile_id))
            for profile_id, external_id, segment, clip_id in rows.iterator(chunk_size=CHUNK)]


def recipient_pages_revoke(*, campaign: Campaign, external_ids: list[str] | None = None) -> int:
    """Revoke the pages of these viewers (all of the campaign's when None): their links answer 404
    from now on. How many were revoked."""
    pages = RecipientPage.objects.filter(organization_id=campaign.organization_id, campaign=campaign,
                                         revoked_at__isnull=True)
    if external_ids is not None:
        pages = pages.filter(profile__external_id__in=external_ids)
    return pages.update(revoked_at=timezone.now())
