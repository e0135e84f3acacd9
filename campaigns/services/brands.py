"""Brands: name, palette, style notes and the trigger token their LoRA learns."""
import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from campaigns.models import Brand, Organization
from generation.limits import MAX_PALETTE

HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def _clean_palette(palette: list) -> list[str]:
    if not isinstance(palette, list) or len(palette) > MAX_PALETTE:
        raise ValidationError({"palette": f"palette must be a list of at most {MAX_PALETTE} colours like '#1A2B3C'."})
    bad = [c for c in palette if not isinstance(c, str) or not HEX_COLOUR.match(c)]
    if bad:
        raise ValidationError({"palette": f"not a #RRGGBB colour: {bad[:3]}; write colours like '#1A2B3C'."})
    return [c.upper() for c in palette]


def _trigger_token(name: str, organization: Organization) -> str:
    # A made-up word the base model has never seen, so the LoRA can bind the brand's look to it.
    stem = slugify(name).replace("-", "")[:24] or "brand"
    token = f"{stem}style"
    n = 1
    while Brand.objects.filter(organization=organization, trigger_token=token).exists():
        n += 1
        token = f"{stem}style{n}"
    return token


def _save(brand: Brand) -> Brand:
    """Validate and save; a name taken in the organization is a 400 on 'name', race or not."""
    taken = ValidationError({"name": f"a brand named '{brand.name}' already exists in this organization."})
    brand.full_clean(validate_constraints=False)
    if Brand.objects.filter(organization_id=brand.organization_id, name=brand.name).exclude(pk=brand.pk).exists():
        raise taken
    try:
        with transaction.atomic():
            brand.save()
    except IntegrityError:
        raise taken
    return brand


@transaction.atomic
def brand_create(*, organization: Organization, name: str, palette: list | None = None,
                 style_notes: str = "") -> Brand:
    brand = Brand(
        organization=organization,
        name=(name or "").strip(),
        palette=_clean_palette(palette or []),
        style_notes=style_notes or "",
    )
    brand.trigger_token = _trigger_token(brand.name, organization)
    return _save(brand)


@transaction.atomic
def brand_update(*, brand: Brand, name: str | None = None, palette: list | None = None,
                 style_notes: str | None = None) -> Brand:
    if name is not None:
        brand.name = name.strip()
    if palette is not None:
        brand.palette = _clean_palette(palette)
    if style_notes is not None:
        brand.style_notes = style_notes
    return _save(brand)
