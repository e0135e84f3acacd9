"""Tiny Wan checkpoint: deterministic, idempotent, crash-safe, and loadable like a real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation.families import WAN, family_for_model_path
from generation.tiny_model import (
    BUILDER_VERSION, MARKER_NAME, TRAINED_TINY_DIR, build_tiny_model, resolve_model_path,
)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(random_model_path: Path, tmp_path: Path):
    again = build_tiny_model(tmp_path / "again")
    first, second = _files(random_model_path), _files(again)
    assert first.keys() == second.keys()
    assert "transformer/diffusion_pytorch_model.safetensors" in first
    assert "tokenizer/tokenizer.json" in first
    assert first == second
    # No staging folders left next to the model.
    assert [p.name for p in tmp_path.iterdir()] == ["again"]


def test_other_seed_gives_other_weights(random_model_path: Path, tmp_path: Path):
    other = build_tiny_model(tmp_path / "other", seed=1)
    name = "transformer/diffusion_pytorch_model.safetensors"
    assert (other / name).read_bytes() != (random_model_path / name).read_bytes()


def test_complete_folder_is_reused_and_outdated_one_rebuilt(tmp_path: Path):
    folder = build_tiny_model(tmp_path / "tiny")
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert build_tiny_model(folder) == folder
    assert weights.stat().st_mtime_ns == stamp  # returned at once, nothing rewritten

    (folder / MARKER_NAME).write_text(json.dumps({"builder_version": BUILDER_VERSION - 1, "seed": 0}))
    build_tiny_model(folder)
    assert json.loads((folder / MARKER_NAME).read_text())["builder_version"] == BUILDER_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_half_written_folder_is_not_trusted(tmp_path: Path):
    # A folder without the marker (a crash of an older, non-atomic copy) is rebuilt.
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    build_tiny_model(folder)
    assert family_for_model_path(folder) is WAN
    assert (folder / "vae" / "diffusion_pytorch_model.safetensors").is_file()


def test_tokenizer_covers_chinese_and_matches_text_encoder(random_model_path: Path):
    from transformers import AutoTokenizer, UMT5EncoderModel

    tokenizer = AutoTokenizer.from_pretrained(random_model_path / "tokenizer")
    encoder = UMT5EncoderModel.from_pretrained(random_model_path / "text_encoder")
    assert encoder.config.vocab_size == len(tokenizer)
    text = "一杯热咖啡 coffee"
    ids = tokenizer(text).input_ids
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_resolve_model_path(tmp_path: Path):
    built = resolve_model_path("tiny-random", tmp_path / "cache")
    assert built == tmp_path / "cache" / "tiny-random"
    assert resolve_model_path("tiny", tmp_path / "cache") == TRAINED_TINY_DIR
    assert resolve_model_path(str(built), tmp_path) == built
    with pytest.raises(FileNotFoundError, match="neither"):
        resolve_model_path(str(tmp_path / "nowhere"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        resolve_model_path(str(tmp_path / "empty"), tmp_path)
