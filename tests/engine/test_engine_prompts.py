"""Prompt builder: deterministic expansion, any script, segments and bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generation.limits import MAX_SETTING_CHARS
from generation.personalization import CAMERA_PRESETS, camera_preset, default_camera_for_brief
from generation.prompts import (
    MAX_BRIEF_CHARS,
    MAX_PROMPT_CHARS,
    MOTION_WORDS,
    NEGATIVE_PROMPT,
    build_prompt,
    nearest_colour_name,
)

BASE = {
    "brief": "A runner laces up new trail shoes at dawn",
    "brand_name": "Acme",
    "style_notes": "bold, minimalist, warm film grain",
    "palette": ["#D62828", "#000080", "#FFFFFF", "#fff"],
    "trigger_token": "acme_style",
    "segment_attributes": {"interests": ["hiking", "coffee"], "style": "documentary", "locale": "en-US"},
}


def test_prompt_has_every_part_in_order():
    prompt, negative = build_prompt(**BASE)
    assert prompt.startswith("acme_style, A runner laces up new trail shoes at dawn.")
    assert "Acme brand style: bold, minimalist, warm film grain" in prompt
    assert "colour palette of crimson red, navy blue and white" in prompt
    assert "appealing to viewers who love hiking, coffee" in prompt
    assert "visual style: documentary" in prompt
    assert "American audience (en-US)" in prompt
    assert camera_preset(default_camera_for_brief(BASE["brief"])).words_for("wan") in prompt
    assert any(word in prompt for word in MOTION_WORDS)
    positions = [prompt.index(s) for s in ("acme_style", "Acme brand", "colour palette", "appealing", "cinematic")]
    assert positions == sorted(positions)
    assert negative == NEGATIVE_PROMPT


def test_deterministic_across_calls_key_order_and_processes():
    first = build_prompt(**BASE)
    reordered = dict(BASE, segment_attributes={"style": "documentary", "locale": "en-US", "interests": ["hiking", "coffee"]})
    assert build_prompt(**reordered) == first
    # A fresh interpreter has a different str hash salt: the camera words must not depend on it.
    code = (
        "import json, sys; from generation.prompts import build_prompt; "
        "print(json.dumps(build_prompt(**json.loads(sys.argv[1]))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(BASE)], check=True, capture_output=True, text=True, cwd=root
    ).stdout
    assert tuple(json.loads(out)) == first


def test_segments_change_the_prompt():
    a, _ = build_prompt(**BASE)
    b, _ = build_prompt(**dict(BASE, segment_attributes={"interests": ["gaming"], "style": "neon cyberpunk"}))
    assert a != b
    assert "gaming" in b and "hiking" not in b


def test_other_segment_keys_render_sorted_as_key_value():
    prompt, _ = build_prompt(
        **dict(BASE, segment_attributes={"zeta": 1, "age_band": "25-34", "mood": {"b": "calm", "a": "warm"}, "empty": []})
    )
    assert "age_band: 25-34; mood: a warm, b calm; zeta: 1" in prompt
    assert "empty" not in prompt


def test_chinese_text_passes_through_unharmed():
    prompt, _ = build_prompt(
        **dict(
            BASE,
            brief="一杯热咖啡放在木桌上，柔和的晨光",
            brand_name="瑞幸咖啡",
            style_notes="温暖，简约",
            trigger_token="",
            segment_attributes={"interests": ["咖啡", "旅行"], "locale": "zh-CN", "城市": "上海"},
        )
    )
    assert prompt.startswith("一杯热咖啡放在木桌上，柔和的晨光.")
    assert "瑞幸咖啡 brand style: 温暖，简约" in prompt
    assert "咖啡, 旅行" in prompt
    assert "Chinese audience (zh-CN)" in prompt
    assert "城市: 上海" in prompt


def test_default_camera_and_motion_follow_the_brief():
    prompts = [build_prompt(**dict(BASE, brief=f"brief number {i}"))[0] for i in range(30)]
    motions = {prompt.split(". ")[-2] for prompt in prompts}
    cameras = {next(p.key for p in CAMERA_PRESETS if p.words_for("wan") in prompt) for prompt in prompts}
    assert len(motions) > 1 and len(cameras) > 1  # different briefs get different words
    assert all(prompt.split(". ")[-2] in MOTION_WORDS for prompt in prompts)


# --- setting and camera preset -----------------------------------------------------------------------

def test_setting_and_camera_come_right_after_the_brief():
    prompt, _ = build_prompt(**BASE, setting="  a city   street at night ", camera="pan_left")
    assert prompt.startswith("acme_style, A runner laces up new trail shoes at dawn. set in a city street at night. "
                             "the camera pans slowly to the left. Acme brand style")
    without, _ = build_prompt(**BASE, camera="pan_left")
    assert "set in" not in without


@pytest.mark.parametrize("preset", CAMERA_PRESETS, ids=lambda p: p.key)
def test_each_camera_preset_is_worded_for_each_family(preset):
    for family in ("wan", "cogvideox", "ltx"):
        prompt, _ = build_prompt(**BASE, camera=preset.key, family=family)
        assert preset.words_for(family).rstrip(".") in prompt
        others = [p.words_for(family).rstrip(".") for p in CAMERA_PRESETS if p is not preset]
        assert not any(other in prompt for other in others)
    # LTX reads prose captions: its wording is a sentence of its own, unlike Wan's clause.
    wan, _ = build_prompt(**BASE, camera=preset.key, family="wan")
    ltx, _ = build_prompt(**BASE, camera=preset.key, family="ltx")
    assert wan != ltx
    # An unknown family falls back to Wan's wording.
    assert build_prompt(**BASE, camera=preset.key, family="other")[0] == wan


def test_unknown_camera_preset_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="pan_left, pan_right, rise, descend, push_in, static"):
        build_prompt(**BASE, camera="zoom_wild")


@pytest.mark.parametrize("setting", ["x" * (MAX_SETTING_CHARS + 1), "   ", 5])
def test_bad_settings_are_refused(setting):
    with pytest.raises(ValueError, match=str(MAX_SETTING_CHARS) if isinstance(setting, str) else "text"):
        build_prompt(**BASE, setting=setting)


def test_setting_and_camera_survive_truncation():
    huge = {f"key{i:03d}": "word " * 100 for i in range(200)}
    setting = "s" * MAX_SETTING_CHARS
    prompt, _ = build_prompt(**dict(BASE, brief="y" * MAX_BRIEF_CHARS, style_notes="z " * 1000, segment_attributes=huge),
                             setting=setting, camera="descend", family="ltx")
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert f"set in {setting}" in prompt
    assert camera_preset("descend").words_for("ltx").rstrip(".") in prompt
    assert "cinematic" not in prompt  # the tail was what got cut


def test_palette_names():
    assert nearest_colour_name("#000") == "black"
    assert nearest_colour_name("ffffff") == "white"
    assert nearest_colour_name("#4169E1") == "royal blue"
    assert nearest_colour_name("#1E3A8A") == "midnight blue"
    assert nearest_colour_name("#D62828") == "crimson red"
    assert nearest_colour_name("#2A9D8F") == "teal"
    with pytest.raises(ValueError, match="hex"):
        nearest_colour_name("red")
    prompt, _ = build_prompt(**dict(BASE, palette=[]))
    assert "palette" not in prompt


def test_bounds():
    with pytest.raises(ValueError, match="empty"):
        build_prompt(**dict(BASE, brief="   "))
    with pytest.raises(ValueError, match=str(MAX_BRIEF_CHARS)):
        build_prompt(**dict(BASE, brief="x" * (MAX_BRIEF_CHARS + 1)))
    huge = {f"key{i:03d}": "word " * 100 for i in range(200)}
    prompt, _ = build_prompt(
        **dict(BASE, brief="y" * MAX_BRIEF_CHARS, style_notes="z " * 1000, segment_attributes=huge)
    )
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert ("y" * MAX_BRIEF_CHARS) in prompt  # the brief is never cut
