"""The exact fast path (BN folding, windowed post-processing) and the benchmark plumbing.
No speed is asserted here (see ``siammask-edu bench --min-speedup``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu import bench, testing
from siammask_edu.anchors import anchors_for
from siammask_edu.config import tracker_config
from siammask_edu.data import make_synthetic_sequence
from siammask_edu.export.fold import fold_batchnorm, inference_model
from siammask_edu.models import build_model
from siammask_edu.postprocess import paste_mask, paste_window, postprocess_step
from siammask_edu.tracker import Tracker


def test_fold_batchnorm_matches_and_removes_bn():
    model = testing.tiny_model(seed=2)
    for m in model.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # a copy
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.inference_mode():
        a = model.track(x, model.template(z), mask_head=True)
        b = folded.track(x, folded.template(z), mask_head=True)
    for u, v in ((a.score, b.score), (a.delta, b.delta), (a.mask_logits, b.mask_logits)):
        assert float((u - v).abs().max() / u.abs().max()) < 1e-4
    with pytest.raises(ValueError):
        fold_batchnorm(build_model("tiny").train())


def test_inference_model_is_cached_and_invalidated():
    model = testing.tiny_model(seed=2)
    a = inference_model(model)
    assert inference_model(model) is a
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in a.score_head.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in a.backbone.modules())
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # in-place update: stale copy is rebuilt
    assert inference_model(model) is not a
    with pytest.raises(ValueError):
        inference_model(model, scope="some")


def test_fast_and_released_paths_agree_on_a_tiny_model():
    seq = make_synthetic_sequence(5, size=(120, 160))
    model = testing.tiny_model(seed=5)
    fast = list(Tracker(model).track_sequence(seq.frames, seq.box))
    slow = list(Tracker(model, fast=False).track_sequence(seq.frames, seq.box))
    for f, s in zip(fast, slow):
        assert f.row_col == s.row_col
        np.testing.assert_allclose(f.center, s.center, atol=1e-3)
        np.testing.assert_allclose(f.size, s.size, atol=1e-3)


@pytest.mark.parametrize("strategy", ["mbr", "minmax"])
def test_windowed_postprocessing_is_identical(strategy):
    rng = np.random.default_rng(0)
    cfg = tracker_config("davis").replace(box_strategy=strategy)
    anchors, window = anchors_for(cfg)
    for trial in range(40):
        score = torch.randn(1, 10, 25, 25)
        delta = torch.randn(1, 20, 25, 25) * 0.3
        yy, xx = np.mgrid[:127, :127]
        blob = np.exp(-((xx - rng.uniform(20, 107)) ** 2 + (yy - rng.uniform(20, 107)) ** 2)
                      / rng.uniform(100, 2000)) * 20 - 8
        logits = torch.from_numpy(blob.astype(np.float32))
        hw = (int(rng.integers(200, 500)), int(rng.integers(200, 900)))
        center = (rng.uniform(-20, hw[1] + 20), rng.uniform(-20, hw[0] + 20))
        size = (rng.uniform(15, 300), rng.uniform(15, 300))
        args = (score, delta, lambda r, c, t=logits: t, center, size, hw, cfg, anchors, window)
        a = postprocess_step(*args, window_only=True)
        b = postprocess_step(*args, window_only=False)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.mask_prob, b.mask_prob)
        np.testing.assert_array_equal(a.polygon, b.polygon)
        assert a.polygon_source == b.polygon_source


def test_paste_window_bounds_the_pasted_region():
    cfg = tracker_config("davis")
    prob = np.random.default_rng(1).random((127, 127)).astype(np.float32)
    for crop_box, rc in (([100.0, 50.0, 300.0, 300.0], (12, 12)),
                         ([-200.0, -100.0, 500.0, 500.0], (0, 24))):
        full = paste_mask(prob, crop_box, *rc, (480, 854), cfg)
        x0, y0, x1, y1 = paste_window(127, crop_box, *rc, (480, 854), cfg)
        outside = full.copy()
        outside[y0:y1, x0:x1] = -1
        assert np.all(outside == -1)


def test_bench_rows_and_table_on_a_tiny_model(monkeypatch):
    seq = make_synthetic_sequence(5, size=(120, 160))
    monkeypatch.setattr(bench, "load_frames", lambda n=40, sequence=None: [
        np.ascontiguousarray(f[:, :, ::-1]) for f in seq.frames[:n]])
    monkeypatch.setattr(bench, "load_model", lambda p, c=None: (testing.tiny_model(), "tiny"))
    monkeypatch.setattr(bench, "INIT_BOX", tuple(float(v) for v in seq.box))
    rows = [bench.run_single("sharp", 1, p, n_frames=5, warmup=1)
            for p in ("released", "fast")]
    rows.append(bench.run_multi("sharp", 1, 2, n_frames=4, warmup=1))
    for r in rows[:2]:
        assert r["frames_timed"] == 3 and r["fps"] > 0 and r["peak_rss_mib"] > 0
        assert {f"{k}_median_ms" for k in bench.SECTIONS} <= set(r)
        assert r["torch"] == torch.__version__
    assert rows[2]["object_frames_per_s"] > 0
    table = bench.format_table(rows)
    assert "released" in table and "object-frames/s" in table
    with pytest.raises(ValueError):
        bench.run_single("sharp", 1, "warp", n_frames=3)


def test_bench_cli_is_registered():
    from siammask_edu.cli import build_parser

    args = build_parser().parse_args(["bench", "--presets", "lite", "--threads", "1"])
    assert args.command == "bench" and args.presets == ["lite"]


def test_load_model_lite_is_the_shipped_network_when_present(monkeypatch, tmp_path):
    from siammask_edu import save_checkpoint
    from siammask_edu.tracker import WEIGHTS_ENV

    model = testing.tiny_model(seed=5)
    save_checkpoint(model, tmp_path / "siammask_lite.pth")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    got, desc = bench.load_model("lite")
    assert desc == "shipped SiamMask-Lite weights"
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(),
                                                  model.state_dict().values()))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(FileNotFoundError):  # a wrong explicit location is not hidden
        bench.load_model("lite")
