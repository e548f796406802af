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


def _torchrun(tmp_path, *args, nproc=2):
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="default")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "siammask_edu.distributed", *map(str, args)]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
                          timeout=300)


def test_torchrun_entry_prints_the_cli_lines_without_ddp_warnings(tmp_path):
    import json

    root = write_synthetic_sequences(tmp_path / "data", 2, 6)
    cfg = TrainConfig.tiny(data=({"type": "custom", "root": str(root), "frame_range": 3},),
                           epochs=1, pairs_per_epoch=4, batch_size=4, log_every=1)
    (tmp_path / "run.json").write_text(json.dumps(
        {"name": "t", "run_dir": "runs/t", "stages": [cfg.to_dict()]}))
    res = _torchrun(tmp_path, "run.json")
    text = res.stdout + res.stderr
    assert res.returncode == 0, text
    lines = res.stdout.strip().splitlines()  # as the CLI: the data line, then the final line
    assert lines[-1] == "finished: runs/t/0_base/final.pth" and text.count("finished:") == 1, text
    assert "find_unused_parameters" not in text and "Traceback" not in text, text
    # a bad config: each rank the CLI's one-line error, exit status 2, no traceback of ours
    (tmp_path / "bad.json").write_text(json.dumps({"stages": [{"preset": "nope"}]}))
    res = _torchrun(tmp_path, "bad.json")
    text = res.stdout + res.stderr
    # (torchrun itself then exits 1 with its own ChildFailedError report of the ranks' status)
    assert res.returncode != 0 and "exitcode  : 2" in text, text
    assert res.stderr.count("error: unknown stage preset 'nope'") == 1, text
    assert "siammask_edu/" not in text, text  # no traceback through our code


def test_ddp_ranks_decode_on_demand(tmp_path):
    from siammask_edu.training import build_dataset

    root = write_synthetic_sequences(tmp_path / "data", 2, 6)
    cfg = TrainConfig.tiny(data=({"type": "custom", "root": str(root), "frame_range": 3},))
    assert all(s.in_memory for s in build_dataset(cfg, world_size=1).sources)
    ddp = build_dataset(cfg, world_size=2)
    assert not any(s.in_memory for s in ddp.sources)
    ddp[0]
    assert all(not s._images and not s._masks for s in ddp.sources)
