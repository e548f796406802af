"""DDP on 2 CPU processes (gloo) equals one process on the same global batch."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from siammask_edu.checkpoint import read_state_file
from siammask_edu.datasets import write_synthetic_sequences
from siammask_edu.distributed import backend, spawn_cpu
from siammask_edu.training import TrainConfig, train

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def test_two_processes_equal_one_with_accumulation(tmp_path):
    root = write_synthetic_sequences(tmp_path / "data", 2, 6)
    cfg = TrainConfig.tiny(data=({"type": "custom", "root": str(root), "frame_range": 3},),
                           epochs=1, pairs_per_epoch=8, batch_size=4, log_every=1, lr=0.02,
                           schedule="constant", neg=0.0)
    spawn_cpu(cfg, tmp_path / "ddp", world_size=2)
    single = train(cfg.replace(grad_accum=2), tmp_path / "one", progress=False)["model"]
    start = train(cfg, tmp_path / "start", max_steps=0, progress=False)["model"]
    ddp = read_state_file(tmp_path / "ddp" / "final.pth")["state_dict"]
    ref = single.state_dict()
    params = dict(single.named_parameters())
    moved = 0
    for k in params:
        assert torch.allclose(ddp[k], ref[k], rtol=1e-4, atol=1e-6), k
        moved += not torch.equal(start.state_dict()[k], ref[k])
    assert moved > 10  # the comparison is not between two untouched models
    # a plain single-process run on the whole batch is a different computation
    # (BatchNorm statistics and the loss normalisation see 4 pairs instead of 2)
    whole = train(cfg, tmp_path / "whole", progress=False)["model"].state_dict()
    assert any(not torch.allclose(whole[k], ref[k], rtol=1e-4, atol=1e-6) for k in params)


def test_backend_choice():
    assert backend() == ("nccl" if torch.cuda.is_available() else "gloo")
