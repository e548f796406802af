"""Timers for the speed chapter: wall clock on CPU, CUDA events on GPU, peak memory.

* :class:`Stopwatch` accumulates named sections (``with sw("backbone"): ...``) in
  milliseconds, synchronising the device before reading the clock so that asynchronous GPU
  work is charged to the section that launched it.
* :func:`cuda_event_timer` times a callable with CUDA events after a warm-up; it returns
  ``None`` when CUDA is not available (no GPU number is ever made up).
* :func:`peak_memory` reports the process's peak resident set size (CPU) and PyTorch's peak
  allocated bytes (CUDA).

See book/11_speed.py.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch


def synchronize(device="cpu") -> None:
    """Wait for queued work on ``device`` (no-op on CPU).

    See book/11_speed.py.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Stopwatch:
    """Named, accumulating section timer (milliseconds of wall clock).

    Args:
        device: sections end with :func:`synchronize` on this device.
        enabled: ``False`` makes every section a no-op (no synchronisation either).

    Example::

        sw = Stopwatch()
        with sw("crop"):
            x = crop(frame)
        sw.ms["crop"]  # list of milliseconds, one per call

    See book/11_speed.py.
    """

    def __init__(self, device="cpu", enabled: bool = True) -> None:
        self.device = torch.device(device)
        self.enabled = enabled
        self.ms: dict[str, list[float]] = {}

    @contextmanager
    def __call__(self, name: str):
        if not self.enabled:
            yield
            return
        synchronize(self.device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.ms.setdefault(name, []).append(1000.0 * (time.perf_counter() - t0))

    def reset(self) -> None:
        """Forget every recorded section."""
        self.ms.clear()


def cuda_event_timer(fn: Callable[[], object], device="cuda", warmup: int = 3,
                     repeats: int = 10) -> list[float] | None:
    """Time ``fn()`` on a CUDA device with CUDA events, after ``warmup`` untimed calls.

    Args:
        fn: the work to time (launches kernels on ``device``).
        device: a CUDA device.
        warmup, repeats: untimed and timed calls.

    Returns:
        list[float]: milliseconds per timed call, or ``None`` when CUDA is not available or
        ``device`` is not a CUDA device.

    Raises:
        ValueError: for ``repeats < 1`` or ``warmup < 0``.

    See book/11_speed.py.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    with torch.cuda.device(dev):
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize(dev)
        out = []
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(float(start.elapsed_time(end)))
    return out


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (``getrusage``; Linux reports
    KiB, macOS bytes).

    See book/11_speed.py.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mib() -> float | None:
    """Current resident set size, MiB (``/proc/self/statm``; ``None`` where absent).

    See book/11_speed.py.
    """
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def peak_memory(device="cpu") -> dict[str, float | None]:
    """Peak memory: ``{"peak_rss_mib", "cuda_peak_allocated_mib"}`` (the latter ``None``
    off CUDA; reset it with ``torch.cuda.reset_peak_memory_stats``).

    See book/11_speed.py.
    """
    dev = torch.device(device)
    cuda = None
    if dev.type == "cuda" and torch.cuda.is_available():
        cuda = torch.cuda.max_memory_allocated(dev) / (1024.0 * 1024.0)
    return {"peak_rss_mib": peak_rss_mib(), "cuda_peak_allocated_mib": cuda}


__all__ = ["Stopwatch", "cuda_event_timer", "current_rss_mib", "peak_memory", "peak_rss_mib",
           "synchronize"]
