"""Time and peak memory of a piece of work, on a GPU (synchronised; CUDA's allocator peak) or a CPU.

Memory on a CPU: the highest resident set size seen while the work ran (sampled
every millisecond by a thread) minus the resident size just before it: the extra memory
the work needed at its peak, comparable between variants measured in one process. Freed
heap memory is first handed back to the system (glibc's ``malloc_trim``), or an earlier
run's freed blocks would be reused unseen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable

import psutil
import torch

MIB = 2**20


def seconds(work: Callable[[], object], device: torch.device | str) -> float:
    """Wall-clock seconds of ``work``, waiting for the GPU to finish it."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    work()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _release_free_heap() -> None:
    libc = ctypes.util.find_library("c")
    if libc is not None and hasattr(ctypes.CDLL(libc), "malloc_trim"):
        ctypes.CDLL(libc).malloc_trim(0)


def _cpu_peak(work: Callable[[], object], interval: float = 0.001) -> float:
    _release_free_heap()
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return max(peak, process.memory_info().rss) - before


def peak_memory_mib(work: Callable[[], object], device: torch.device | str) -> float:
    """Extra memory (MiB) ``work`` needed at its peak on ``device``."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        work()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / MIB
    return _cpu_peak(work) / MIB
