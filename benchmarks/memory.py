"""Peak memory for the benchmarks' JSON lines: the GPU's allocator peak, or the process's max RSS."""
import resource

import torch


def peak_memory_mb(cuda: bool) -> tuple[float, str]:
    """(megabytes, what was measured)."""
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20, "CUDA max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process max RSS"  # KiB on Linux
