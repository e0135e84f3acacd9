"""Prompt builder: expands a short campaign brief into the detailed prompt a video model needs.

Sora and DALL-E 3 rewrite a user's short request into a long descriptive caption with a language
model before generation. We do the same expansion with fixed rules instead, so that it is
deterministic: the same inputs always give the same prompt, which is stored with every clip and
lets anyone explain and reproduce it. Pure Python: the web process imports this module to preview
prompts, so no torch here.

The prompt reads, in order: LoRA trigger token, brief, the segment's setting, the campaign's camera
preset (worded for the model family), brand style, palette as colour words, the segment's
preferences, motion words, a fixed quality suffix. What personalizes a clip (setting, camera) comes
right after the brief, so that no family's text window ever cuts it. Text in any script (Chinese
briefs, Cyrillic brand names) passes through untouched apart from whitespace collapsing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from generation.limits import MAX_BRIEF_CHARS
from generation.personalization import camera_preset, clean_setting, default_camera_for_brief

# Wan encodes up to 512 tokens and LTX 128; a T5 token is about 4 Latin characters (fewer for
# CJK). 1,200 characters keeps the brief and brand words inside every family's window; the tail
# (quality words) is what gets cut by the tokenizer when a family's window is shorter.
MAX_PROMPT_CHARS = 1200
# A brief is the marketer's own words: too long is a form error, not something to cut silently
# (MAX_BRIEF_CHARS, generation.limits). Style notes are quoted up to this many characters.
PROMPT_STYLE_NOTES_CHARS = 300
# Segment attributes come from clustering and may be long lists: these bounds clip them.
MAX_SEGMENT_ITEMS = 8
MAX_SEGMENT_VALUE_CHARS = 80
MAX_PALETTE_COLOURS = 6

# Small fixed table of named colours a text encoder knows; a hex code maps to the nearest one.
# Order matters only for ties, which then resolve to the earlier entry (deterministic).
NAMED_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("charcoal grey", (54, 69, 79)),
    ("grey", (128, 128, 128)),
    ("silver", (192, 192, 192)),
    ("white", (255, 255, 255)),
    ("cream", (255, 253, 208)),
    ("beige", (245, 245, 220)),
    ("brown", (139, 69, 19)),
    ("maroon", (128, 0, 0)),
    ("crimson red", (220, 20, 60)),
    ("red", (255, 0, 0)),
    ("coral", (255, 127, 80)),
    ("orange", (255, 165, 0)),
    ("gold", (255, 215, 0)),
    ("yellow", (255, 255, 0)),
    ("olive green", (128, 128, 0)),
    ("lime green", (50, 205, 50)),
    ("green", (0, 128, 0)),
    ("forest green", (34, 85, 34)),
    ("dark teal", (0, 77, 77)),
    ("teal", (0, 128, 128)),
    ("turquoise", (64, 224, 208)),
    ("sky blue", (135, 206, 235)),
    ("blue", (0, 0, 255)),
    ("royal blue", (65, 105, 225)),
    ("navy blue", (0, 0, 128)),
    ("midnight blue", (25, 25, 112)),
    ("indigo", (75, 0, 130)),
    ("purple", (128, 0, 128)),
    ("lavender", (181, 126, 220)),
    ("magenta", (255, 0, 255)),
    ("pink", (255, 192, 203)),
    ("hot pink", (255, 105, 180)),
)

MOTION_WORDS: tuple[str, ...] = (
    "calm, flowing motion",
    "energetic, dynamic motion",
    "graceful slow motion",
    "subtle, natural movement",
    "playful, bouncy motion",
    "smooth, continuous movement",
)
QUALITY_SUFFIX = "cinematic lighting, high detail, sharp focus, coherent natural motion"
NEGATIVE_PROMPT = (
    "blurry, low quality, low resolution, distorted, deformed, jpeg artifacts, watermark, "
    "garbled text, flicker, jitter, static frame, oversaturated, overexposed, ugly, duplicate"
)

# Locale codes a marketer's segment typically carries, as words the text encoder understands.
LOCALE_WORDS: dict[str, str] = {
    "de": "German",
    "en": "English-speaking",
    "en-gb": "British",
    "en-us": "American",
    "es": "Spanish-speaking",
    "fr": "French",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "pt-br": "Brazilian",
    "zh": "Chinese",
    "zh-cn": "Chinese",
    "zh-tw": "Taiwanese",
}

_SPACE = re.compile(r"\s+")


def build_prompt(
    *,
    brief: str,
    brand_name: str,
    style_notes: str,
    palette: list[str],
    trigger_token: str,
    segment_attributes: dict,
    setting: str = "",
    camera: str | None = None,
    family: str = "wan",
) -> tuple[str, str]:
    """Return (prompt, negative_prompt) for one brief, brand and audience segment.

    `setting`: where the segment's clips take place (empty: none); `camera`: a camera preset key
    (None: the brief's default preset); `family`: the model family whose wording to use.
    """
    # 1. Check and normalise the free text.
    brief = _clean(brief)
    if not brief:
        raise ValueError("brief must not be empty.")
    if len(brief) > MAX_BRIEF_CHARS:
        raise ValueError(f"brief must be at most {MAX_BRIEF_CHARS} characters; got {len(brief)}.")
    brand_name = _clean(brand_name)
    style_notes = _clip(_clean(style_notes), PROMPT_STYLE_NOTES_CHARS)
    trigger_token = _clean(trigger_token)
    if not isinstance(segment_attributes, dict):
        raise TypeError(f"segment_attributes must be a dict; got {type(segment_attributes).__name__}.")
    setting = clean_setting(setting) if setting else ""
    preset = camera_preset(camera or default_camera_for_brief(brief))

    # 2. Assemble clauses in a fixed order: what the model must see first comes first, because a
    #    short text window truncates from the end.
    clauses: list[str] = []
    clauses.append(f"{trigger_token}, {brief}" if trigger_token else brief)
    if setting:
        clauses.append(f"set in {setting}")
    clauses.append(preset.words_for(family))
    if brand_name and style_notes:
        clauses.append(f"{brand_name} brand style: {style_notes}")
    elif brand_name:
        clauses.append(f"{brand_name} brand")
    elif style_notes:
        clauses.append(f"brand style: {style_notes}")
    colours = palette_words(palette)
    if colours:
        clauses.append(f"colour palette of {_join_words(colours)}")
    clauses.extend(_segment_clauses(segment_attributes))
    clauses.append(motion_words(brief))
    clauses.append(QUALITY_SUFFIX)

    # 3. Bound the length by dropping whole clauses from the end, never the brief. A clause's own
    #    closing stop ("…all day.") is dropped: the clauses are joined by full stops.
    clauses = [clause.rstrip(" .。") or clause for clause in clauses]
    prompt = clauses[0]
    for clause in clauses[1:]:
        candidate = f"{prompt}. {clause}"
        if len(candidate) + 1 > MAX_PROMPT_CHARS:
            break
        prompt = candidate
    return f"{prompt}.", NEGATIVE_PROMPT


def palette_words(palette: list[str]) -> list[str]:
    """Hex codes ("#1a2b3c", "fff") -> nearest colour names, deduplicated, in palette order."""
    if not isinstance(palette, (list, tuple)):
        raise TypeError(f"palette must be a list of hex colours; got {type(palette).__name__}.")
    words: list[str] = []
    for code in palette[:MAX_PALETTE_COLOURS]:
        name = nearest_colour_name(code)
        if name not in words:
            words.append(name)
    return words


def nearest_colour_name(code: str) -> str:
    """The NAMED_COLOURS entry nearest to a hex colour, by distance in CIELAB."""
    from generation.colour import hex_to_rgb, srgb_to_lab

    target = srgb_to_lab(hex_to_rgb(code))
    distances = ((srgb_to_lab([rgb for _, rgb in NAMED_COLOURS]) - target) ** 2).sum(axis=-1)
    return NAMED_COLOURS[int(distances.argmin())][0]  # argmin: the first of equals, as before


def motion_words(brief: str) -> str:
    """Motion words picked from a stable hash of the brief (sha256: `hash()` is salted per process)."""
    digest = hashlib.sha256(_clean(brief).encode("utf-8")).digest()
    return MOTION_WORDS[digest[1] % len(MOTION_WORDS)]


def _segment_clauses(attributes: dict) -> list[str]:
    # Known keys get natural phrasing; any other key is rendered "key: value", in sorted order.
    clauses: list[str] = []
    interests = _render_value(attributes.get("interests"))
    if interests:
        clauses.append(f"appealing to viewers who love {interests}")
    style = _render_value(attributes.get("style"))
    if style:
        clauses.append(f"visual style: {style}")
    locale = _render_value(attributes.get("locale"))
    if locale:
        words = LOCALE_WORDS.get(locale.lower().replace("_", "-"))
        clauses.append(f"set for a {words} audience ({locale})" if words else f"set for a {locale} audience")
    others = []
    for key in sorted(attributes, key=str):
        if key in ("interests", "style", "locale"):
            continue
        value = _render_value(attributes[key])
        if value:
            others.append(f"{_clip(_clean(str(key)), MAX_SEGMENT_VALUE_CHARS)}: {value}")
    if others:
        clauses.append("; ".join(others[:MAX_SEGMENT_ITEMS]))
    return clauses


def _render_value(value: object) -> str:
    """A segment attribute as words: lists joined in their own order, dicts by sorted key."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, dict):
        items = [f"{_clean(str(k))} {_clean(str(v))}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
    elif isinstance(value, (list, tuple, set, frozenset)):
        # A set has no order of its own: sort it so the prompt does not depend on hash seeds.
        seq = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        items = []
        for item in seq:
            word = _clean(str(item))
            if word and word not in items:
                items.append(word)
    else:
        items = [_clean(str(value))]
    items = [_clip(item, MAX_SEGMENT_VALUE_CHARS) for item in items if item][:MAX_SEGMENT_ITEMS]
    return ", ".join(items)


def _join_words(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _clean(text: str) -> str:
    # NFC keeps CJK and accented text as-is while unifying composed/decomposed forms, so the same
    # words always give the same prompt bytes.
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}.")
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    # Cut at a word boundary when there is one (CJK text has none, and is cut by character).
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;.")
