"""The platform's own prompts in the toy world: what a setting, a camera preset and a brand mean there.

The platform wraps a brief in clauses (trigger token, setting, camera, brand style, palette,
segment preferences, motion and quality words: `generation.prompts.build_prompt`). `tiny` is
trained on toy scenes captioned with exactly such prompts, built by the real prompt builder from
random brands, briefs, palettes and segments, and the toy world ties the meaning of three clauses
to what the adherence checker can see:

- a setting from the catalogue -> the background colour (`SETTING_BACKGROUND`);
- a camera preset -> the shape's motion (`CAMERA_DIRECTION`): the camera panning left makes the
  scene slide right across the frame, rising makes it sink; push-in and static keep it still
  (the toy world draws no zoom). The platform words each preset for the model it runs, and for
  `tiny` that wording is the motion itself in the toy captions' words (`pan_left` -> "moving
  right"): a frozen random text encoder gives "left" nearly the same vector in "the camera pans
  to the left" as in "moving left", the opposite motion;
- the brand trigger token, once the brand's LoRA has learned it -> the brand's colour (orange,
  which no training caption or clip contains).

Everything else in the prompt (brief, brand name and style, palette words, segment clauses,
motion and quality words) is noise the model learns to ignore. The shape and its colour are not
named by a platform prompt: without a brand LoRA, any training colour may come.

Training prompts draw their noise from the `train` banks below, held-out evaluation from the
`heldout` banks: different brand names, briefs, style notes and audiences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from generation.personalization import CAMERA_PRESETS, SETTINGS_CATALOGUE
from generation.prompts import build_prompt
from generation.toyworld.world import Scene

SETTING_BACKGROUND: dict[str, str] = {
    "forest_trail": "green", "city_park": "green",
    "city_night": "black", "starry_field": "black",
    "sunny_beach": "yellow", "wheat_field": "yellow",
    "blue_lake": "blue", "open_ocean": "blue",
    "snowy_slope": "white", "white_studio": "white",
    "red_canyon": "red",
    "neon_stage": "purple",
}
CAMERA_DIRECTION: dict[str, str] = {
    "pan_left": "right", "pan_right": "left", "rise": "down", "descend": "up", "push_in": "still", "static": "still",
}
assert set(SETTING_BACKGROUND) == {e.key for e in SETTINGS_CATALOGUE}
assert set(CAMERA_DIRECTION) == {p.key for p in CAMERA_PRESETS}
# `tiny`'s wording of each preset is the motion it makes on screen, in the toy captions' own words.
assert all(p.words_for("tiny") == Scene("circle", "red", CAMERA_DIRECTION[p.key], "white").motion_words
           for p in CAMERA_PRESETS)


def settings_for_background(colour: str) -> list[str]:
    return [key for key, bg in SETTING_BACKGROUND.items() if bg == colour]


def presets_for_direction(direction: str) -> list[str]:
    return [key for key, d in CAMERA_DIRECTION.items() if d == direction]


# --- Noise banks: what varies between brands, campaigns and segments ---------------------------

_SYLLABLES = ("ka", "lo", "ver", "sun", "mi", "tra", "nor", "bel", "zen", "ox", "ri", "pa", "dal", "fen", "qu",
              "sto", "ly", "mar", "io", "gen", "ta", "vex", "rom", "ul", "sei", "dor", "ax", "pel")
_BANKS = {
    "train": {
        "products": ("running shoes", "trail shoes", "a water bottle", "a backpack", "headphones", "a smartwatch",
                     "an espresso machine", "a rain jacket", "sunglasses", "a yoga mat", "a bicycle helmet",
                     "energy bars", "a camping stove", "a phone case", "sparkling water", "a travel mug",
                     "wireless earbuds", "a fleece hoodie", "ski goggles", "a skateboard", "運動鞋", "保溫杯"),
        "benefits": ("grip on wet rock", "comfort all day", "light as air", "built to last", "zero sugar",
                     "ten hours of battery", "made from recycled materials", "keeps drinks cold for a day",
                     "folds into a pocket", "quiet and powerful", "waterproof seams", "全天舒適", "輕巧耐用"),
        "occasions": ("for the weekend", "for the daily commute", "for race day", "for long summer days",
                      "for the first snow", "for busy mornings", "for every adventure", "for the holidays"),
        "styles": ("bold, energetic, high contrast", "warm film grain, friendly", "clean, minimal, modern",
                   "playful, colourful, upbeat", "premium, calm, understated", "gritty, documentary, honest",
                   "bright, airy, optimistic", "retro, nostalgic, analog", "溫暖、親切", "極簡、現代"),
        "interests": ("hiking", "camping", "running", "cycling", "coffee", "travel", "fashion", "gaming", "music",
                      "cooking", "yoga", "photography", "surfing", "skiing", "reading", "gardening", "通勤",
                      "咖啡", "登山", "美食"),
        "looks": ("rugged", "minimal", "energetic", "cosy", "luxury", "sporty", "bohemian", "極簡"),
        "locales": ("en-US", "en-GB", "de", "fr", "ja", "zh-TW", "es", "pt-BR", ""),
    },
    "heldout": {
        "products": ("a thermal flask", "compression socks", "a folding kayak", "a bamboo toothbrush",
                     "noise-cancelling earphones", "a climbing harness", "oat milk", "a carbon road bike",
                     "a down sleeping bag", "a smart ring", "登山杖", "咖啡豆"),
        "benefits": ("dries in minutes", "half the weight", "plastic free", "lasts a whole trip",
                     "fits in one hand", "tested on the Alps", "超輕量", "一秒展開"),
        "occasions": ("for dawn patrol", "for city weekends", "for the marathon season", "for rainy days",
                      "for family trips"),
        "styles": ("crisp, daylight, natural", "moody, cinematic, deep shadows", "cheerful, pastel, soft",
                   "technical, precise, engineered", "自然、清新"),
        "interests": ("climbing", "kayaking", "marathons", "baking", "board games", "birdwatching", "tea",
                      "design", "triathlon", "攝影", "露營"),
        "looks": ("outdoorsy", "urban", "premium", "playful", "自然"),
        "locales": ("en-US", "ko", "it", "zh-TW", ""),
    },
}


@dataclass(frozen=True)
class Brand:
    name: str
    trigger_token: str
    style_notes: str
    palette: tuple[str, ...]


def random_brand(rng: random.Random, split: str = "train") -> Brand:
    bank = _BANKS[split]
    # Held-out brand names use three syllables, training names two: none can coincide.
    count = 3 if split == "heldout" else 2
    name = "".join(rng.choice(_SYLLABLES) for _ in range(count)).capitalize()
    palette = tuple(f"#{rng.randrange(1 << 24):06X}" for _ in range(rng.randint(1, 4)))
    # The platform's own token rule (campaigns.services.brands): the slugged name + "style".
    return Brand(name=name, trigger_token=f"{name.lower()}style", style_notes=rng.choice(bank["styles"]),
                 palette=palette)


def random_brief(rng: random.Random, split: str = "train") -> str:
    bank = _BANKS[split]
    product = rng.choice(bank["products"])
    parts = [product.capitalize() if product.isascii() else product]
    if rng.random() < 0.8:
        parts.append(rng.choice(bank["occasions"]))
    brief = " ".join(parts)
    if rng.random() < 0.7:
        brief += ": " + rng.choice(bank["benefits"])
    return brief + "."


def random_segment_attributes(rng: random.Random, split: str = "train") -> dict:
    bank = _BANKS[split]
    attributes: dict = {"interests": rng.sample(bank["interests"], rng.randint(1, 3))}
    if rng.random() < 0.7:
        attributes["style"] = rng.choice(bank["looks"])
    locale = rng.choice(bank["locales"])
    if locale:
        attributes["locale"] = locale
    return attributes


def platform_prompt(*, brand: Brand, brief: str, setting_key: str, camera: str, segment_attributes: dict,
                    with_trigger: bool = True) -> str:
    """The prompt the platform builds for one clip, with the camera worded for `tiny` (`ModelSpec.wording`)."""
    setting = next(e.phrase for e in SETTINGS_CATALOGUE if e.key == setting_key)
    prompt, _ = build_prompt(brief=brief, brand_name=brand.name, style_notes=brand.style_notes,
                             palette=list(brand.palette), trigger_token=brand.trigger_token if with_trigger else "",
                             segment_attributes=segment_attributes, setting=setting, camera=camera, family="tiny")
    return prompt


def random_platform_caption(rng: random.Random, *, background: str, direction: str, split: str = "train") -> str:
    """A platform prompt whose setting means `background` and whose camera means `direction`."""
    return platform_prompt(brand=random_brand(rng, split), brief=random_brief(rng, split),
                           setting_key=rng.choice(settings_for_background(background)),
                           camera=rng.choice(presets_for_direction(direction)),
                           segment_attributes=random_segment_attributes(rng, split),
                           with_trigger=rng.random() < 0.9)
