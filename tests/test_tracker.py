"""Tests of siammask_edu.tracker on a seeded ``tiny`` network: API, state, input validation.

(Equivalence with the released tracker: test_tracker_equivalence.py.)"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from siammask_edu.checkpoint import save_checkpoint
from siammask_edu.config import ModelConfig, TrackerConfig
from siammask_edu.models import build_model
from siammask_edu.tracker import Tracker, TrackResult, as_bgr_uint8

H, W = 120, 160
BOX = (50.0, 30.0, 40.0, 30.0)


def make_model(refine=True, seed=0):
    """A seeded tiny network whose box regression is scaled to O(1) values (random weights
    on 0..255 inputs give deltas of ~1e3, i.e. exp(dw) = inf: the guard's case, tested
    separately)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = build_model(ModelConfig.tiny().replace(refine=refine))
    last = [mod for mod in m.box_head.modules() if isinstance(mod, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(1e-4)
        last.bias.mul_(1e-4)
    return m


@pytest.fixture(scope="module")
def model():
    return make_model()


def frames(n=4, seed=0):
    """RGB frames: a textured background and a bright square moving right."""
    g = np.random.default_rng(seed)
    bg = g.integers(0, 120, (H, W, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = bg.copy()
        f[35:65, 55 + 3 * i:95 + 3 * i] = (230, 60, 20)
        out.append(f)
    return out


def run(tracker, fs, box=BOX):
    return list(tracker.track_sequence(fs, box))


def same(a: TrackResult, b: TrackResult):
    return (a.box == b.box and a.score == b.score and a.row_col == b.row_col
            and np.array_equal(a.mask, b.mask) and np.array_equal(a.polygon, b.polygon))


def test_track_result_fields(model):
    res = run(Tracker(model, "davis"), frames())
    assert len(res) == 3  # one result per frame after the init frame
    r = res[0]
    assert r.mask.shape == (H, W) and r.mask.dtype == bool
    assert r.mask_prob.shape == (H, W) and r.mask_prob.dtype == np.float32
    assert r.polygon.shape == (4, 2) and r.polygon.dtype == np.float32
    assert len(r.box) == 4 and all(isinstance(v, float) for v in r.box)
    assert 0.0 <= r.score <= 1.0 and r.polygon_source in ("mask", "box")
    assert all(isinstance(v, int) and 0 <= v < 25 for v in r.row_col)
    assert r.box[0] == pytest.approx(r.center[0] - r.size[0] / 2)
    assert r.size[0] >= 10 and not r.kept_previous
    assert "<img" in r._repr_html_()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.score = 2.0  # frozen


def test_track_sequence_equals_init_then_track(model):
    fs = frames()
    a = run(Tracker(model), fs)
    t = Tracker(model)
    t.init(fs[0], BOX)
    b = [t.track(f) for f in fs[1:]]
    assert all(same(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="empty"):
        list(Tracker(model).track_sequence([], BOX))


def test_rgb_and_bgr_give_the_same_result(model):
    fs = frames()
    a = run(Tracker(model, color_order="rgb"), fs)
    b = run(Tracker(model, color_order="bgr"), [f[:, :, ::-1].copy() for f in fs])
    assert all(same(x, y) for x, y in zip(a, b))
    assert np.array_equal(as_bgr_uint8(fs[0], "rgb"), fs[0][:, :, ::-1])
    assert np.array_equal(as_bgr_uint8(fs[0], "bgr"), fs[0])


def test_grayscale_rgba_and_non_contiguous_frames(model):
    fs = frames()
    gray = [f[:, :, 1].copy() for f in fs]
    a = run(Tracker(model), gray)
    b = run(Tracker(model), [g[:, :, None] for g in gray])
    c = run(Tracker(model), [np.repeat(g[:, :, None], 3, 2) for g in gray])
    assert all(same(x, y) and same(x, z) for x, y, z in zip(a, b, c))
    rgba = [np.concatenate([f, np.full((H, W, 1), 7, np.uint8)], 2) for f in fs]
    assert all(same(x, y) for x, y in zip(run(Tracker(model), rgba), run(Tracker(model), fs)))
    big = [np.zeros((H * 2, W * 2, 3), np.uint8) for _ in fs]
    for bf, f in zip(big, fs):
        bf[::2, ::2] = f
    strided = [bf[::2, ::2] for bf in big]  # non-contiguous views
    assert not strided[0].flags.c_contiguous
    assert all(same(x, y) for x, y in zip(run(Tracker(model), strided), run(Tracker(model), fs)))


def test_bad_frames(model):
    t = Tracker(model)
    f = frames()[0]
    with pytest.raises(ValueError, match="uint8"):
        t.init(f.astype(np.float32) / 255, BOX)
    with pytest.raises(ValueError, match="shape"):
        t.init(np.zeros((H, W, 2), np.uint8), BOX)
    with pytest.raises(ValueError, match="empty"):
        t.init(np.zeros((0, W, 3), np.uint8), BOX)
    with pytest.raises(RuntimeError, match="init"):
        t.track(f)
    t.init(f, BOX)
    with pytest.raises(ValueError, match=r"100x80.*160x120"):
        t.track(np.zeros((80, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="color_order"):
        Tracker(model, color_order="hsv")


@pytest.mark.parametrize("box", [(10, 10, 0, 20), (10, 10, 20, -5), (np.nan, 10, 20, 20),
                                 (10, 10, np.inf, 20), (1, 2, 3), "abcd"])
def test_bad_boxes(model, box):
    with pytest.raises(ValueError):
        Tracker(model).init(frames()[0], box)


def test_box_outside_and_partly_outside(model):
    f = frames()[0]
    with pytest.raises(ValueError, match="outside"):
        Tracker(model).init(f, (W + 5, 10, 20, 20))
    with pytest.raises(ValueError, match="outside"):
        Tracker(model).init(f, (-50, 10, 50, 20))  # touches x = 0 only
    t = Tracker(model)
    with pytest.warns(UserWarning, match="extends beyond"):
        t.init(f, (-10, 100, 40, 40))  # clipped to x 0..30, y 100..120
    assert t.center == (15.0, 110.0) and t.size == (30.0, 20.0)
    assert isinstance(t.track(frames()[1]), TrackResult)


def test_tiny_box_warns_but_tracks(model):
    t = Tracker(model)
    with pytest.warns(UserWarning, match="minimum size"):
        t.init(frames()[0], (70, 40, 2, 1.5))
    r = t.track(frames()[1])
    assert np.all(np.isfinite(r.box)) and min(r.size) >= 10


def test_init_polygon(model):
    t = Tracker(model)
    poly = [50, 30, 90, 30, 90, 60, 50, 60]
    t.init_polygon(frames()[0], poly)
    assert t.center == (70.0, 45.0) and t.size == (41.0, 31.0)  # VOT "+1"
    res = list(Tracker(model).track_sequence(frames(), poly))
    assert len(res) == 3
    with pytest.raises(ValueError):
        t.init_polygon(frames()[0], [1, 2, 3, 4, 5, 6, 7, np.nan])


def test_shared_model_and_reinit(model):
    fa, fb = frames(4, seed=0), frames(4, seed=1)
    ref_a, ref_b = run(Tracker(model), fa), run(Tracker(model), fb, (20, 20, 50, 40))
    ta, tb = Tracker(model), Tracker(model)
    ta.init(fa[0], BOX)
    tb.init(fb[0], (20, 20, 50, 40))
    got_a, got_b = [], []
    for x, y in zip(fa[1:], fb[1:]):  # interleaved on one model
        got_a.append(ta.track(x))
        got_b.append(tb.track(y))
    assert all(same(x, y) for x, y in zip(got_a, ref_a))
    assert all(same(x, y) for x, y in zip(got_b, ref_b))
    # re-init on another sequence behaves like a fresh tracker
    again = run(ta, fb, (20, 20, 50, 40))
    assert all(same(x, y) for x, y in zip(again, ref_b))


def test_set_target(model):
    t = Tracker(model)
    t.init(frames()[0], BOX)
    t.set_target((80.0, 50.0), (30.0, 20.0))
    assert t.center == (80.0, 50.0) and t.size == (30.0, 20.0)
    with pytest.raises(ValueError):
        t.set_target((np.nan, 1.0), (3.0, 3.0))
    with pytest.raises(ValueError):
        t.set_target((1.0, 1.0), (0.0, 3.0))


def test_non_finite_network_output_is_guarded(monkeypatch):
    m = make_model()
    t = Tracker(m)
    t.init(frames()[0], BOX)
    before = (t.center, t.size)
    real = m.track

    def broken(x, exemplar, mask_head=None):
        out = real(x, exemplar, mask_head)
        out.score.fill_(float("nan"))
        out.delta.fill_(float("inf"))
        return out

    monkeypatch.setattr(m, "track", broken)
    r = t.track(frames()[1])
    assert r.kept_previous and (t.center, t.size) == before
    assert np.all(np.isfinite(r.box)) and np.all(np.isfinite(r.polygon)) and r.score == 0.0


def test_sharp_model_skips_the_dense_mask_head(monkeypatch):
    m = make_model()
    calls = []
    real = m.track

    def spy(x, exemplar, mask_head=None):
        calls.append(mask_head)
        assert not torch.is_grad_enabled()
        return real(x, exemplar, mask_head)

    monkeypatch.setattr(m, "track", spy)
    run(Tracker(m), frames(3))
    assert calls == [False, False]


def test_base_model_masks_from_the_mask_head():
    m = make_model(refine=False)
    assert m.refine is None
    res = run(Tracker(m, "base"), frames())
    assert res[0].mask.shape == (H, W) and res[0].mask_prob.dtype == np.float32


@pytest.mark.parametrize("strategy", ["minmax", "mbr", "opt"])
def test_box_strategies(model, strategy):
    cfg = TrackerConfig.davis().replace(box_strategy=strategy, seg_thr=0.0,
                                        min_polygon_area=0.0)
    res = run(Tracker(model, cfg), frames(3))
    assert all(r.polygon.shape == (4, 2) and np.all(np.isfinite(r.polygon)) for r in res)


def test_configs_and_two_branch_rejected(model):
    assert Tracker(model, "vot").config == TrackerConfig.vot()
    # pysot's crop rounding places some crops 1 px apart; the API accepts it
    assert len(run(Tracker(model, crop_rounding="half_up"), frames(3))) == 2
    with pytest.raises(ValueError, match="crop_rounding"):
        Tracker(model, crop_rounding="floor")
    with pytest.raises(ValueError):
        Tracker(model, "otb")
    with pytest.raises(ValueError, match="three-branch"):
        Tracker(build_model(ModelConfig.two_branch().replace(
            backbone_width=8, backbone_blocks=(1, 1, 1), feature_channels=32,
            hidden_channels=32)))


def test_from_checkpoint(tmp_path, model):
    path = save_checkpoint(model, tmp_path / "tiny.pth")
    t = Tracker.from_checkpoint(path, "davis")
    fs = frames()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = run(t, fs)
    assert all(same(x, y) for x, y in zip(a, run(Tracker(model), fs)))
