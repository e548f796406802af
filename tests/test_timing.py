"""Timers: CPU sections, CUDA events absent without CUDA, peak memory."""

from __future__ import annotations

import pytest
import torch

from siammask_edu.timing import Stopwatch, cuda_event_timer, peak_memory, synchronize


def test_stopwatch_records_sections_in_ms():
    sw = Stopwatch()
    for _ in range(3):
        with sw("a"):
            torch.ones(10).sum()
    assert len(sw.ms["a"]) == 3 and all(v >= 0 for v in sw.ms["a"])
    sw.reset()
    assert sw.ms == {}
    off = Stopwatch(enabled=False)
    with off("a"):
        pass
    assert off.ms == {}


def test_cuda_event_timer_is_none_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: covered by the benchmark on GPU")
    assert cuda_event_timer(lambda: None) is None
    assert cuda_event_timer(lambda: None, device="cpu") is None
    with pytest.raises(ValueError):
        cuda_event_timer(lambda: None, repeats=0)


def test_peak_memory_and_synchronize():
    synchronize("cpu")
    mem = peak_memory("cpu")
    assert mem["peak_rss_mib"] > 0 and mem["cuda_peak_allocated_mib"] is None
