"""Brand LoRAs as named adapters on one loaded base model: apply, switch, disable, evict."""

from __future__ import annotations

import numpy as np
import pytest

from generation.engine import Engine

from .conftest import TINY_CALL

CALL = dict(TINY_CALL, seeds=[0])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b)


@pytest.mark.slow
def test_switching_adapters_changes_output_without_reloading_base(engine: Engine, make_lora):
    lora_a, lora_b = str(make_lora(1)), str(make_lora(2))
    loads = Engine.base_loads

    base = engine.generate(lora=None, **CALL)[0]
    with_a = engine.generate(lora=("brand-a", lora_a), **CALL)[0]
    with_b = engine.generate(lora=("brand-b", lora_b), **CALL)[0]
    assert not _same(base, with_a)
    assert not _same(with_a, with_b)
    assert set(engine.loaded_adapters) >= {"brand-a", "brand-b"}

    # Back to A, to no LoRA, and to B again: each gives exactly what it gave before.
    assert _same(engine.generate(lora=("brand-a", lora_a), **CALL)[0], with_a)
    assert _same(engine.generate(lora=None, **CALL)[0], base)
    assert _same(engine.generate(lora=("brand-b", lora_b), **CALL)[0], with_b)

    assert Engine.base_loads == loads  # never reloaded the base model
    assert engine.loaded_adapters[-1] == "brand-b"  # most recently used last


@pytest.mark.slow
def test_lora_file_path_is_accepted(engine: Engine, make_lora):
    folder = make_lora(1)
    from_folder = engine.generate(lora=("brand-a", str(folder)), **CALL)[0]
    engine.generate(lora=None, **CALL)  # a new adapter loaded while LoRA is disabled must still apply
    from_file = engine.generate(lora=("brand-a-file", str(folder / "pytorch_lora_weights.safetensors")), **CALL)[0]
    assert _same(from_folder, from_file)


@pytest.mark.slow
def test_least_recently_used_adapters_are_deleted(random_model_path, make_lora):
    small = Engine(random_model_path, device="cpu", max_adapters=2)
    loads = Engine.base_loads
    first = small.generate(lora=("one", str(make_lora(1))), **CALL)[0]
    small.generate(lora=("two", str(make_lora(2))), **CALL)
    small.generate(lora=("three", str(make_lora(3))), **CALL)

    assert small.loaded_adapters == ["two", "three"]
    assert sorted(small.pipe.get_list_adapters()["transformer"]) == ["three", "two"]

    # Using "two" makes "three" the oldest; loading "one" again then evicts "three".
    small.generate(lora=("two", str(make_lora(2))), **CALL)
    again = small.generate(lora=("one", str(make_lora(1))), **CALL)[0]
    assert small.loaded_adapters == ["two", "one"]
    assert sorted(small.pipe.get_list_adapters()["transformer"]) == ["one", "two"]
    assert _same(first, again)
    assert Engine.base_loads == loads


def test_missing_lora_fails_loudly(engine: Engine, tmp_path):
    before = engine.loaded_adapters
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        engine.generate(lora=("ghost", str(tmp_path / "nope")), **CALL)
    with pytest.raises(ValueError, match="without dots"):
        engine.generate(lora=("brand.v2", str(tmp_path)), **CALL)
    assert engine.loaded_adapters == before  # nothing evicted for a LoRA that was never there


def test_corrupt_lora_fails_loudly_and_leaves_no_remains(engine: Engine, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(Exception):
        engine.generate(lora=("bad", str(bad)), **CALL)
    assert "bad" not in engine.loaded_adapters
    assert "bad" not in engine.pipe.get_list_adapters().get("transformer", [])
