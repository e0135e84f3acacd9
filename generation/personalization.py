"""What makes a clip personal beyond the brief: the settings catalogue and the camera presets.

- A *setting* is where a segment's clips take place ("a city street at night"). Marketers write
  their own; otherwise the platform suggests the catalogue entry nearest to the segment's
  attributes by the same text embedding that places viewers (`suggestion_text` is what gets
  embedded for each entry).
- A *camera preset* is a campaign's camera move, worded for each model family: Wan and CogVideoX
  read short comma-separated clauses, LTX was trained on long prose captions.

Pure Python: the web process lists both in the API and the dashboard, so no torch here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# A setting is a short phrase; the prompt builder gives it a clause of its own.
from generation.limits import MAX_SETTING_CHARS

# The one segment of a campaign with no profiles to cluster (and its fallback name).
GENERAL_SEGMENT = "General"


@dataclass(frozen=True)
class SettingEntry:
    key: str
    phrase: str  # as it goes into the prompt
    label_zh: str  # Traditional Chinese label for the dashboard
    keywords: str  # what kind of audience it suits, for the embedding suggestion

    @property
    def suggestion_text(self) -> str:
        return f"{self.phrase}: {self.keywords}"


SETTINGS_CATALOGUE: tuple[SettingEntry, ...] = (
    SettingEntry("forest_trail", "a mountain forest trail at dawn", "黎明的山林步道",
                 "hiking, camping, trekking, outdoors, nature, mountains, trail running, rugged"),
    SettingEntry("city_park", "a green city park in spring", "春天的城市公園",
                 "families, picnics, dogs, kids, jogging, gardening, relaxing weekends"),
    SettingEntry("city_night", "a city street at night", "夜晚的城市街道",
                 "commuting, urban life, nightlife, coffee, office work, minimal, 通勤, 咖啡, 城市"),
    SettingEntry("starry_field", "an open field under a starry night sky", "星空下的原野",
                 "astronomy, stargazing, night photography, quiet, dreamy"),
    SettingEntry("sunny_beach", "a sunny sandy beach", "陽光沙灘",
                 "surfing, swimming, summer, vacation, travel, sunshine, beach volleyball"),
    SettingEntry("wheat_field", "a golden wheat field at noon", "正午的金色麥田",
                 "countryside, farming, baking, bread, food, rural life, harvest"),
    SettingEntry("blue_lake", "a calm lake under a clear blue sky", "藍天下的寧靜湖泊",
                 "fishing, kayaking, rowing, sailing, calm, wellness, meditation"),
    SettingEntry("open_ocean", "the open ocean on a clear day", "晴天的遼闊海洋",
                 "diving, sailing, cruises, marine life, ocean, water sports"),
    SettingEntry("snowy_slope", "a snowy mountain slope", "雪山斜坡",
                 "skiing, snowboarding, winter sports, cold weather, alpine"),
    SettingEntry("white_studio", "a bright white photo studio", "明亮的白色攝影棚",
                 "fashion, design, minimalism, product photography, beauty, clean style"),
    SettingEntry("red_canyon", "a red rock canyon at sunset", "夕陽下的紅岩峽谷",
                 "road trips, desert, climbing, adventure, off-road, running races, energetic"),
    SettingEntry("neon_stage", "a neon-lit concert stage", "霓虹閃爍的演唱會舞台",
                 "music, concerts, gaming, festivals, dancing, nightlife, esports"),
)
SETTINGS_BY_KEY = {entry.key: entry for entry in SETTINGS_CATALOGUE}
SETTINGS_BY_PHRASE = {entry.phrase: entry for entry in SETTINGS_CATALOGUE}


@dataclass(frozen=True)
class CameraPreset:
    key: str
    label: str
    label_zh: str
    # Family name (or "tiny", the toy world's own checkpoint) -> the clause that model's prompts
    # carry; "wan" is the default wording.
    wording: dict[str, str]
    # Where the scene travels on screen over a clip, as shares of the frame (x right, y down): a pan
    # to the left slides it right. None: no translation says the move (a push-in is a zoom).
    screen_motion: tuple[float, float] | None = None

    def words_for(self, family: str) -> str:
        return self.wording.get(family, self.wording["wan"])


# The share of the frame a camera move carries the scene over one clip (the toy world's paths travel 35%).
CAMERA_TRAVEL = 0.35

CAMERA_PRESETS: tuple[CameraPreset, ...] = (
    CameraPreset("pan_left", "Pan left", "向左平移", {
        "wan": "the camera pans slowly to the left",
        "cogvideox": "the camera pans slowly to the left",
        "ltx": "The camera slowly pans to the left, so the scene slides across the frame to the right.",
        "tiny": "moving right",
    }, screen_motion=(CAMERA_TRAVEL, 0.0)),
    CameraPreset("pan_right", "Pan right", "向右平移", {
        "wan": "the camera pans slowly to the right",
        "cogvideox": "the camera pans slowly to the right",
        "ltx": "The camera slowly pans to the right, so the scene slides across the frame to the left.",
        "tiny": "moving left",
    }, screen_motion=(-CAMERA_TRAVEL, 0.0)),
    CameraPreset("rise", "Rise (crane up)", "上升（升降鏡頭）", {
        "wan": "the camera rises slowly, crane up",
        "cogvideox": "the camera rises slowly, crane shot upwards",
        "ltx": "The camera rises slowly on a crane, so the subject sinks toward the bottom of the frame.",
        "tiny": "moving down",
    }, screen_motion=(0.0, CAMERA_TRAVEL)),
    CameraPreset("descend", "Descend (crane down)", "下降（升降鏡頭）", {
        "wan": "the camera descends slowly, crane down",
        "cogvideox": "the camera descends slowly, crane shot downwards",
        "ltx": "The camera descends slowly on a crane, so the subject rises toward the top of the frame.",
        "tiny": "moving up",
    }, screen_motion=(0.0, -CAMERA_TRAVEL)),
    CameraPreset("push_in", "Push in", "推進", {
        "wan": "slow push-in towards the subject",
        "cogvideox": "slow dolly push-in towards the subject",
        "ltx": "The camera pushes in slowly towards the subject, which stays centred in the frame.",
        "tiny": "standing still",
    }),
    CameraPreset("static", "Static", "固定鏡頭", {
        "wan": "static camera, locked-off shot",
        "cogvideox": "static camera, locked-off tripod shot",
        "ltx": "The camera is locked off on a tripod and does not move.",
        "tiny": "standing still",
    }, screen_motion=(0.0, 0.0)),
)
CAMERA_BY_KEY = {preset.key: preset for preset in CAMERA_PRESETS}


def camera_preset(key: str) -> CameraPreset:
    """The preset called `key`; a ValueError that lists the known ones otherwise."""
    try:
        return CAMERA_BY_KEY[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown camera preset {key!r}; choose one of: {', '.join(CAMERA_BY_KEY)}.") from None


def default_camera_for_brief(brief: str) -> str:
    """The preset a campaign gets when the marketer picks none: fixed by a stable hash of the brief.

    sha256, not `hash()`: Python salts str hashes per process, so `hash()` would pick differently
    in the web process and in the worker.
    """
    digest = hashlib.sha256(" ".join(brief.split()).encode("utf-8")).digest()
    return CAMERA_PRESETS[digest[0] % len(CAMERA_PRESETS)].key


def clean_setting(value: object) -> str:
    """A marketer's setting, whitespace collapsed; ValueError saying what is allowed otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"setting must be text of 1 to {MAX_SETTING_CHARS} characters; got {type(value).__name__}.")
    text = " ".join(value.split())
    if not text or len(text) > MAX_SETTING_CHARS:
        raise ValueError(f"setting must be 1 to {MAX_SETTING_CHARS} characters; got {len(text)}.")
    return text
