"""Data parallelism across CPU processes, for the toy-world recipe (`make tiny-model`).

On two cores, two processes of one thread each train the recipe's small VAE about a fifth faster
than one process of two threads: its convolutions over 16 channels split badly across threads
(measured in the README, "Retraining within the hour"). Each process (`Shard`) draws the whole batch from
the same seeded generators as one process would, takes its own slice of it, and averages its
gradients with the others' before the optimizer step, so that every process holds the same
weights and the run computes what one process would, up to the order of float sums.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

RESULT_NAME = "result.pt"


@dataclass(frozen=True)
class Shard:
    """One process's part of a data-parallel run: `rank` of `world`."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """The process that reports progress and whose result the run returns."""
        return self.rank == 0

    def part(self, batch: int) -> slice:
        """This process's slice of a batch of `batch` items."""
        if batch % self.world:
            raise ValueError(f"A batch of {batch} does not split over {self.world} processes: "
                             f"give a batch size that {self.world} divides, or fewer processes.")
        size = batch // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def average_gradients(self, parameters) -> None:
        """Replace each gradient by its mean over the processes (one all-reduce of them all)."""
        if self.world == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.world
        for grad, mean in zip(grads, _unflatten_dense_tensors(flat, grads)):
            grad.copy_(mean)


SINGLE = Shard()


def run_sharded(fn: Callable[..., Any], processes: int, *args: Any) -> Any:
    """`fn(shard, *args)` in `processes` processes that share the CPU threads between them; returns
    the leader's result. One process runs it here, on `args` themselves; more are spawned, each on
    its own copy of `args` (`fn` must then be a module-level function, and its result picklable by
    `torch.save`)."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1; got {processes}.")
    if processes == 1:
        return fn(SINGLE, *args)
    threads = max(1, torch.get_num_threads() // processes)
    with tempfile.TemporaryDirectory(prefix="data-parallel-") as folder:
        torch.multiprocessing.spawn(_process, args=(processes, threads, folder, fn, args), nprocs=processes, join=True)
        return torch.load(Path(folder) / RESULT_NAME, weights_only=False)


def _process(rank: int, world: int, threads: int, folder: str, fn: Callable[..., Any], args: tuple) -> None:
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    # Arguments arrive in memory shared between the processes: each trains its own copy.
    args = copy.deepcopy(args)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        result = fn(Shard(rank, world), *args)
        if rank == 0:
            torch.save(result, Path(folder) / RESULT_NAME)
    finally:
        dist.destroy_process_group()
