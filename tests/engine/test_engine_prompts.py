"""Prompt builder: deterministic expansion, any script, segments and bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generation.prompts import (
    CAMERA_WORDS,
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
    assert any(word in prompt for word in CAMERA_WORDS)
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


def test_camera_words_follow_the_brief():
    seen = {build_prompt(**dict(BASE, brief=f"brief number {i}"))[0].split(". ")[-2] for i in range(30)}
    assert len(seen) > 1  # different briefs get different camera/motion words


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
