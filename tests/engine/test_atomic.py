"""Staged writes (generation.atomic): the final path holds the old version or the new, never half."""
import pytest

from generation.atomic import staged_file, staged_folder


def test_a_staged_file_replaces_the_old_one_on_success(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    with staged_file(target) as staging:
        assert staging.parent == target.parent and staging.suffix == ".mp4" and staging != target
        staging.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # readers see the old file until the end
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_a_failed_staged_file_leaves_the_old_one(tmp_path):
    target = tmp_path / "deep" / "poster.jpg"
    with pytest.raises(RuntimeError):
        with staged_file(target) as staging:
            staging.write_bytes(b"half")
            raise RuntimeError("encoder died")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_staged_folder_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "step-10"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"from an earlier run")
    with staged_folder(target) as staging:
        (staging / "state.json").write_text("{}")
    assert [p.name for p in target.iterdir()] == ["state.json"]  # never a mix of two runs
    assert [p.name for p in tmp_path.iterdir()] == ["step-10"]


def test_a_failed_staged_folder_leaves_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_bytes(b"complete")
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(target) as staging:
            (staging / "weights").write_bytes(b"ha")
            raise KeyboardInterrupt
    assert (target / "weights").read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_folder_kept_by_its_predicate_wins(tmp_path):
    target = tmp_path / "tiny"
    target.mkdir()
    (target / "marker").write_text("complete build of another process")
    with staged_folder(target, keep=lambda existing: (existing / "marker").exists()) as staging:
        (staging / "marker").write_text("ours")
    assert (target / "marker").read_text() == "complete build of another process"
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]
