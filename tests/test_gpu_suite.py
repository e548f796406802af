"""The GPU suite: a CPU dry run at tiny sizes (so the one command a lent GPU runs cannot rot
in CI), its JSON written row by row, and the committed H200 run read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from siammask_edu import gpu_suite

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(device="cpu", objects=(1, 2), compile_modes=(False,), frames=4, warmup=1,
            train_batch=2, train_steps=1, train_warmup=1)


def test_dry_run_writes_every_row(tmp_path):
    out = tmp_path / "suite.json"
    lines = []
    res = gpu_suite.run_suite(out, presets=("lite", "sharp"), precisions=("fp32", "fp16"),
                              train_presets=("lite",), train_precisions=("fp32",),
                              dry_run=True, log=lines.append, **TINY)
    on_disk = json.loads(out.read_text())
    assert on_disk["complete"] is True and res["complete"] is True
    assert on_disk["tracking"] == json.loads(json.dumps(res["tracking"]))
    assert len(res["tracking"]) == 2 * 2 * 2 and len(lines) == 8 + 1
    ok = [r for r in res["tracking"] if r["status"] == "ok"]
    assert {(r["preset"], r["objects"]) for r in ok} == {("lite", 1), ("lite", 2),
                                                          ("sharp", 1), ("sharp", 2)}
    for r in ok:
        assert r["precision"] == "fp32" and r["frames_timed"] == 2
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["object_frames_per_s"] == pytest.approx(r["objects"] * 1000 / r["mean_ms"])
    fp16 = [r for r in res["tracking"] if r["precision"] == "fp16"]
    assert all(r["status"] == "skipped" and "CUDA" in r["reason"] for r in fp16)
    (train,) = res["training"]
    assert train["status"] == "ok" and train["loss_finite"] and train["pairs_per_s"] > 0
    assert train["trainable_backbone"] == list(gpu_suite.TRAIN_UNFREEZE["lite"])
    assert res["environment"]["gpu"] is None and res["dry_run"] is True
    table = gpu_suite.format_tables(res)
    assert "DRY RUN" in table and "| lite | fp32 | 1 |" in table and "35 fps" in table
    assert "skipped: precision='fp16' needs a CUDA device" in table


def test_budget_spent_marks_rows_skipped_not_invented(tmp_path):
    res = gpu_suite.run_suite(tmp_path / "s.json", presets=("lite",), precisions=("fp32",),
                              train_presets=("lite",), budget_s=0.0, dry_run=True,
                              log=lambda s: None, **TINY)
    rows = res["tracking"] + res["training"]
    assert rows and all(r["status"] == "skipped" and "time budget" in r["reason"]
                        for r in rows)
    assert all("median_ms" not in r and "pairs_per_s" not in r for r in rows)
    assert "| lite | fp32 | 1 | skipped | skipped |" in gpu_suite.format_tables(res)


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        gpu_suite.run_suite(tmp_path / "s.json", presets=("huge",), **TINY)
    with pytest.raises(ValueError, match="frames >= warmup"):
        gpu_suite.run_suite(tmp_path / "s.json", **dict(TINY, frames=2, warmup=1))
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            gpu_suite.run_suite(tmp_path / "s.json", **dict(TINY, device="cuda"))


def test_launcher_dry_run(tmp_path):
    """``benchmarks/gpu_suite.sh`` exactly as a lent machine runs it, at tiny sizes."""
    out = tmp_path / "dry.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), str(out),
                           "--dry-run", "--presets", "lite", "--train-presets"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["complete"] and res["training"] == []
    assert "| lite | fp32 | 2 |" in proc.stdout and f"wrote {out}" in proc.stdout


def test_committed_gpu_run_reads_back():
    runs = gpu_suite.recorded_runs()
    assert runs, "benchmarks/results/gpu_suite_*.json is committed"
    for run in runs:
        assert run["complete"] and not run["dry_run"]
        assert run["environment"]["gpu"] and run["environment"]["cuda"]
        assert gpu_suite.row(run, "sharp") is not None
        table = gpu_suite.format_tables(run)
        assert run["environment"]["gpu"] in table and "INCOMPLETE" not in table


def test_recorded_runs_rejects_foreign_json(tmp_path):
    (tmp_path / "gpu_suite_x.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="gpu_suite_x.json is not a GPU-suite result"):
        gpu_suite.recorded_runs(tmp_path)
    assert gpu_suite.recorded_runs(tmp_path / "none") == []


def test_a_failing_row_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(gpu_suite, "training_row", boom)
    res = gpu_suite.run_suite(tmp_path / "s.json", presets=("lite",), precisions=("fp32",),
                              train_presets=("lite",), train_precisions=("fp32", "bf16"),
                              dry_run=True, log=lambda s: None, **TINY)
    assert res["complete"] and all(r["status"] == "ok" for r in res["tracking"])
    assert [r["status"] for r in res["training"]] == ["error", "error"]
    assert "RuntimeError: CUDA error: out of memory" in res["training"][0]["reason"]
