"""The packaging: pyproject.toml's roles and the locks under requirements/ that the images and the dev
venv install. The web install set stays free of model libraries and test tools; the locks follow
pyproject.toml and agree with one another; torch is the CPU build wherever a CPU installs it."""
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import NOT_FOR_WEB, ROOT, lock

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def direct(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_web_install_set_has_no_model_libraries_or_test_tools():
    web = lock("web")
    assert not [name for name in web if name in NOT_FOR_WEB or name.startswith("nvidia-")]
    # The bar of the split: under half of the dev venv's packages (a third of its megabytes).
    assert len(web) < len(lock("dev")) / 2


@pytest.mark.parametrize("name, extras, groups", [
    ("web", (), ()),
    ("cpu-worker", ("cpu",), ()),
    ("gpu-worker", ("gpu",), ()),
    ("dev", ("cpu", "gpu"), ("test", "bench")),
])
def test_each_lock_pins_every_dependency_its_role_declares(name, extras, groups):
    declared = direct(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        declared |= direct(PYPROJECT["project"]["optional-dependencies"][extra])
    for group in groups:
        declared |= direct(PYPROJECT["dependency-groups"][group])
    pinned = lock(name)
    assert declared - pinned.keys() == set(), f"requirements/{name}.txt is stale: run `make lock`"
    # and nothing of another role: the web lock has no extra, the workers' locks no test tool.
    if name != "dev":
        assert "pytest" not in pinned


def test_locks_agree_on_every_shared_version():
    """The dev venv runs the suite on the versions that the images install (torch aside: CUDA on GPUs)."""
    dev = lock("dev")
    cuda = ("nvidia-", "cuda-", "triton")
    for name in ("web", "cpu-worker", "gpu-worker"):
        pinned = lock(name)
        differ = {p: (v, dev[p]) for p, v in pinned.items() if p in dev and dev[p] != v and p != "torch"}
        missing = {p for p in pinned if p not in dev and not (name == "gpu-worker" and p.startswith(cuda))}
        assert (differ, missing) == ({}, set()), f"requirements/{name}.txt and requirements/dev.txt differ: `make lock`"


def test_torch_is_the_cpu_build_where_a_cpu_installs_it_and_cuda_on_the_gpu_worker():
    assert lock("dev")["torch"] == lock("cpu-worker")["torch"] == "2.13.0+cpu"
    gpu = lock("gpu-worker")
    assert gpu["torch"] == "2.13.0" and any(name.startswith("nvidia-cu") for name in gpu)
