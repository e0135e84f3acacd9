"""Segments: the marketer's edits (name, setting) and the platform's setting suggestions.

A setting the marketer wrote is never replaced by a suggestion: suggestions only fill segments
whose setting is still empty, and the write re-checks that under the row's own filter, so an edit
that lands while a worker computes a suggestion wins.
"""
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from campaigns.models import Campaign, Segment
from generation.limits import MAX_NAME_CHARS
from generation.personalization import clean_setting


@transaction.atomic
def segment_update(*, segment: Segment, setting: str | None = None, name: str | None = None) -> Segment:
    """Rename a segment and/or set where its clips take place (the marketer's setting)."""
    segment = Segment.objects.select_for_update().select_related("campaign").get(pk=segment.pk)
    fields = []
    if setting is not None:
        try:
            segment.setting = clean_setting(setting)
        except ValueError as exc:
            raise ValidationError({"setting": str(exc)}) from None
        segment.setting_source = Segment.SettingSource.MARKETER
        fields += ["setting", "setting_source"]
    renamed = False
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
            raise ValidationError({"name": f"name must be 1 to {MAX_NAME_CHARS} characters."})
        renamed = name.strip() != segment.name
        segment.name = name.strip()
        fields.append("name")
    if not fields:
        return segment
    taken = ValidationError({"name": f"this campaign already has a segment named '{segment.name}'; "
                                     "names must be unique."})
    if renamed and Segment.objects.filter(campaign_id=segment.campaign_id, name=segment.name).exclude(
            pk=segment.pk).exists():
        raise taken
    try:
        with transaction.atomic():
            segment.save(update_fields=fields)
    except IntegrityError:
        raise taken from None
    if renamed and not segment.attributes and segment.campaign.segment_count is None:
        # A marketer's segment without attributes is embedded by its name: a new name, a new place.
        from .campaigns import segments_embed_enqueue

        segments_embed_enqueue(campaign=segment.campaign)
    return segment


def segment_settings_suggest(*, segments: list[Segment], vectors) -> int:
    """Fill the empty settings of ``segments`` (rows of ``vectors`` are their embeddings) with the
    nearest catalogue entries; how many were filled. Workers only: the catalogue is embedded here."""
    from generation.setting_suggest import suggest_settings

    pending = [(i, s) for i, s in enumerate(segments) if not s.setting]
    if not pending:
        return 0
    entries = suggest_settings([vectors[i] for i, _ in pending])
    filled = 0
    for (_, segment), entry in zip(pending, entries, strict=True):
        # setting="" in the filter: a marketer's setting written meanwhile stays.
        if Segment.objects.filter(pk=segment.pk, setting="").update(
                setting=entry.phrase, setting_source=Segment.SettingSource.SUGGESTED):
            segment.setting, segment.setting_source = entry.phrase, Segment.SettingSource.SUGGESTED
            filled += 1
    return filled


def segment_settings_fill(*, segments: list[Segment]) -> int:
    """Suggest settings for those of ``segments`` still without one. A marketer's segment is
    compared by its centroid (embedded from the marketer's words), or by its words when it has
    none yet (generation does not wait for the cpu job that embeds them); a clustered segment
    always by its words, which are k-anonymous where its centroid is a mean of people's vectors."""
    import numpy as np

    pending = [s for s in segments if not s.setting]
    if not pending:
        return 0
    clustered = set(Campaign.objects.filter(pk__in={s.campaign_id for s in pending}, segment_count__isnull=False)
                    .values_list("pk", flat=True))
    missing = [s for s in pending if s.centroid is None or s.campaign_id in clustered]
    if missing:
        from generation.embeddings import embed_texts

        from .segmentation import segment_text

        fresh = embed_texts([segment_text(name=s.name, attributes=s.attributes) for s in missing])
        by_id = {s.pk: row for s, row in zip(missing, fresh, strict=True)}
    else:
        by_id = {}
    vectors = [by_id[s.pk] if s.pk in by_id else np.asarray(s.centroid, dtype=np.float32) for s in pending]
    return segment_settings_suggest(segments=pending, vectors=vectors)
