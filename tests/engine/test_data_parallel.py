"""Data-parallel training processes (`generation.training.data_parallel`), as `make tiny-model`
trains the VAE: two real processes over gloo compute what one process computes on the whole batch."""

from __future__ import annotations

import pytest
import torch

from generation.training.data_parallel import SINGLE, Shard, run_sharded
from generation.toyworld import train

pytestmark = pytest.mark.slow

STEPS = 4
BATCH = 6


def _steps(shard: Shard, model: torch.nn.Module) -> dict:
    """A few SGD steps on this shard's part of fixed batches, gradients averaged and clipped as the recipe does."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # plain steps: a wrong gradient scale shows
    generator = torch.Generator().manual_seed(7)
    for _ in range(STEPS):
        x = torch.randn(BATCH, 5, generator=generator)
        y = torch.randn(BATCH, 3, generator=generator)
        part = shard.part(BATCH)
        loss = (model(x[part]) - y[part]).pow(2).mean()
        loss.backward()
        shard.average_gradients(model.parameters())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return model.state_dict()


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def test_processes_train_as_one_process_on_the_whole_batch():
    start = _model()
    initial = {k: v.clone() for k, v in start.state_dict().items()}
    together = run_sharded(_steps, 2, start)
    # The processes trained copies: the model handed in is untouched.
    assert all(torch.equal(initial[k], v) for k, v in start.state_dict().items())
    alone = run_sharded(_steps, 1, _model())
    for name, value in alone.items():
        assert not torch.equal(value, initial[name])  # it trained
        torch.testing.assert_close(together[name], value, rtol=1e-5, atol=1e-6)
    # A process alone on its half of each batch (no averaging) learns something else.
    half = _model()
    _steps(_Alone(rank=0, world=2), half)
    assert not torch.allclose(half.state_dict()["0.weight"], together["0.weight"], atol=1e-4)


class _Alone(Shard):
    """Its part of each batch, its gradients kept to itself."""

    def average_gradients(self, parameters) -> None:
        pass


def test_a_batch_that_does_not_split_is_refused_with_what_would():
    with pytest.raises(ValueError, match=r"A batch of 5 does not split over 2 processes"):
        Shard(rank=0, world=2).part(5)
    assert SINGLE.part(5) == slice(0, 5)
    assert [Shard(rank=r, world=3).part(6) for r in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    with pytest.raises(ValueError, match="processes must be at least 1"):
        run_sharded(_steps, 0, _model())


def test_the_recipe_vae_trains_in_two_processes():
    recipe = train.Recipe(vae_steps=3)
    vae = train._train_vae(recipe, torch.device("cpu"), processes=2)
    fresh = train._new_vae(recipe).state_dict()
    # The leader's trained weights came back.
    assert any(not torch.equal(value, fresh[name]) for name, value in vae.state_dict().items())
    assert not vae.training and not any(p.requires_grad for p in vae.parameters())
    pixels = torch.rand(1, 3, train.NUM_FRAMES, train.HEIGHT, train.WIDTH) * 2 - 1
    with torch.no_grad():
        decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample
    assert decoded.shape == pixels.shape



@pytest.mark.parametrize("processes, message", [
    ("4", "--processes 4 does not split the VAE's batch of 6: give a number that divides it"),
    ("0", "--processes 0: give 1 or more"),
])
def test_make_tiny_model_refuses_a_process_count_it_cannot_use(monkeypatch, capsys, tmp_path, processes, message):
    monkeypatch.setattr("sys.argv", ["train", "--processes", processes, "--output", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        train.main()
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
