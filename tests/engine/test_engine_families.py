"""Model family specs: validation messages, family detection, and the no-torch import rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generation.families import COGVIDEOX, FAMILIES, LTX, WAN, family_by_name, family_for_model_path


def test_wan_accepts_its_defaults_and_tiny_sizes():
    assert WAN.validate(num_frames=81, width=832, height=480) == {}
    assert WAN.validate(num_frames=9, width=48, height=32) == {}
    assert WAN.validate(num_frames=1, width=16, height=16) == {}


def test_every_family_accepts_its_own_defaults():
    for family in FAMILIES.values():
        assert family.validate(
            num_frames=family.default_num_frames, width=family.default_width, height=family.default_height
        ) == {}, family.name


def test_wrong_frame_count_says_what_is_allowed():
    errors = WAN.validate(num_frames=10, width=64, height=64)
    assert errors == {"num_frames": "num_frames must be 4k+1 (5, 9, 13, 17, …, 257) for wan; got 10"}
    assert "8k+1 (9, 17, 25, 33, …, 257)" in LTX.validate(num_frames=12, width=64, height=64)["num_frames"]
    # CogVideoX decodes 13 frames as 16 (latent slices of 2): only 8k+1 comes back exact.
    assert "8k+1" in COGVIDEOX.validate(num_frames=13, width=64, height=64)["num_frames"]
    assert COGVIDEOX.validate(num_frames=49, width=720, height=480) == {}
    # Its pipeline accepts /8, but the transformer's 2x2 patches need /16.
    assert "multiple of 16" in COGVIDEOX.validate(num_frames=9, width=40, height=48)["width"]


def test_wrong_sizes_name_each_field():
    errors = WAN.validate(num_frames=9, width=50, height=0)
    assert set(errors) == {"width", "height"}
    assert errors["width"] == "width must be a multiple of 16 between 16 and 1920 for wan; got 50"
    assert errors["height"].endswith("got 0")
    assert "multiple of 32" in LTX.validate(num_frames=9, width=48, height=64)["width"]


def test_bounds_and_types():
    assert set(WAN.validate(num_frames=261, width=1936, height=64)) == {"num_frames", "width"}
    assert set(WAN.validate(num_frames=-3, width=64, height=-16)) == {"num_frames", "height"}
    errors = WAN.validate(num_frames=9.0, width="64", height=True)
    assert set(errors) == {"num_frames", "width", "height"}
    assert "got '64'" in errors["width"]


def test_family_for_model_path(tmp_path: Path):
    for family in FAMILIES.values():
        folder = tmp_path / family.name
        folder.mkdir()
        (folder / "model_index.json").write_text(json.dumps({"_class_name": family.pipeline_class}))
        assert family_for_model_path(folder) is family

    unknown = tmp_path / "sd"
    unknown.mkdir()
    (unknown / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ValueError, match="StableDiffusionPipeline"):
        family_for_model_path(unknown)
    with pytest.raises(FileNotFoundError):
        family_for_model_path(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="_class_name"):
        family_for_model_path(tmp_path / "broken")


def test_family_by_name():
    assert family_by_name("wan") is WAN
    with pytest.raises(ValueError, match="cogvideox, ltx, wan"):
        family_by_name("sora")


def test_web_side_modules_do_not_import_torch():
    # The web process imports these; torch there would cost seconds and gigabytes per process.
    code = (
        "import sys, generation, generation.families, generation.prompts; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
