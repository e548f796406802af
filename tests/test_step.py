"""One tracking step for every consumer (siammask_edu.step).

Tracker.track, MultiTracker (N = 1), bench.timed_track, inspection.trace_tracker and the
onnxruntime backend all run ``TrackStep``; fed the same frames they must return identical
TrackResults -- every field, ``lost`` included -- and leave the same state. Hooks observe
without changing the result; the stages are the public functions the step is made of."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu import bench, data, testing
from siammask_edu.config import TrackerConfig
from siammask_edu.inspection import trace_tracker
from siammask_edu.multi import MultiTracker
from siammask_edu.postprocess import choose_row, finish_step, postprocess_step
from siammask_edu.step import STAGES, StepHook, TrackStep, row_mask_logits, run_network
from siammask_edu.timing import Stopwatch
from siammask_edu.tracker import Tracker, TrackResult

N_FRAMES = 7  # the init frame + 6 tracked frames


def scaled_tiny(seed=0, refine=True):
    """A seeded tiny network whose box regression and score logits are scaled to O(1)
    values: random weights on 0..255 inputs decode boxes of exp(1e3) = inf (every step would
    keep the previous state: the guard's case, tested separately) and saturate every
    probability at 0 or 1 (no score between to put a lost threshold)."""
    m = testing.tiny_model(seed=seed)
    if not refine:
        m.refine = None
    for head, k in ((m.box_head, 1e-4), (m.score_head, 1e-3)):
        last = [mod for mod in head.modules() if isinstance(mod, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.mul_(k)
            last.bias.mul_(k)
    return m


@pytest.fixture(scope="module")
def bunny():
    s = data.load_sample("bunny")
    return s.frames[:N_FRAMES], s.box


@pytest.fixture(scope="module")
def lite():
    try:
        t = Tracker.from_pretrained("lite")
    except FileNotFoundError as exc:  # a build without the weights
        pytest.skip(f"shipped weights not available: {exc}")
    return t.model  # the folded network from_pretrained runs (fast="fold_all")


def run_all(model, config, frames, box, fast=True):
    """Every consumer of the step, each on a fresh tracker over the same frames.

    Returns:
        {consumer: (results, (center, size) at the end)}.
    """
    out = {}
    t = Tracker(model, config, fast=fast)
    out["Tracker.track"] = (list(t.track_sequence(frames, box)), (t.center, t.size))

    mt = MultiTracker(model, config, fast=fast)
    mt.init(frames[0], [box])
    res = [mt.track(f) for f in frames[1:]]
    assert all(len(r) == 1 for r in res)
    out["MultiTracker(N=1)"] = ([r[0] for r in res],
                                (mt.trackers[0].center, mt.trackers[0].size))

    t = Tracker(model, config, fast=fast)  # RGB tracker, BGR frames: timed_track takes BGR
    t.init(frames[0], box)
    sw = Stopwatch()
    res = [bench.timed_track(t, np.ascontiguousarray(f[:, :, ::-1]), sw) for f in frames[1:]]
    assert all(len(sw.ms[k]) == len(res) for k in bench.SECTIONS)  # one row per step
    out["bench.timed_track"] = (res, (t.center, t.size))

    t = Tracker(model, config, fast=fast)
    records = trace_tracker(t, frames, box)
    out["trace_tracker"] = ([r.result for r in records], (t.center, t.size))
    for rec in records:  # the record's parts are the result's own step
        assert rec.step.lost == rec.result.lost
        assert (rec.decision.row, rec.decision.col) == rec.result.row_col
        assert int(np.argmax(rec.pscore)) == rec.decision.index
    return out


def assert_identical(a: TrackResult, b: TrackResult, where: str):
    for name in ("box", "score", "row_col", "polygon_source", "center", "size",
                 "kept_previous", "lost"):
        assert getattr(a, name) == getattr(b, name), f"{where}: {name}"
    for name in ("mask", "mask_prob", "polygon"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), f"{where}: {name}"


def assert_all_identical(runs):
    (ref_name, (ref, ref_state)), *others = runs.items()
    for name, (res, state) in others:
        assert len(res) == len(ref), name
        for i, (a, b) in enumerate(zip(ref, res)):
            assert_identical(a, b, f"{name} vs {ref_name}, frame {i + 1}")
        assert state == ref_state, name
    return ref


def test_every_consumer_gives_identical_results_on_the_shipped_network(lite, bunny):
    frames, box = bunny
    cfg = Tracker.from_pretrained("lite").config  # calibrated lost_score / seg_thr
    ref = assert_all_identical(run_all(lite, cfg, frames, box))
    assert len(ref) == N_FRAMES - 1
    # a real track (not a degenerate one): masks, moving boxes, confident scores
    assert all(r.polygon_source == "mask" and not r.kept_previous for r in ref)
    assert len({r.box for r in ref}) == len(ref)
    # lost_score 1.0 (the top of its range) is above every score here: every frame is lost,
    # for every consumer
    lost = assert_all_identical(run_all(lite, cfg.replace(lost_score=1.0), frames, box))
    assert [r.lost for r in lost] == [True] * len(ref)
    # lost does not feed back: the same track, frame for frame
    assert [r.box for r in lost] == [r.box for r in ref]


def test_every_consumer_agrees_on_a_mixed_lost_sequence_released_path(bunny):
    """The released path (fast=False: dense mask head, full-frame thresholding), the base
    model (63x63 masks from the mask head) and a threshold that splits the scores."""
    frames, box = bunny
    model = scaled_tiny(seed=1, refine=False)
    ref = list(Tracker(model, "base", fast=False).track_sequence(frames, box))
    scores = sorted(r.score for r in ref)
    thr = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2
    assert scores[0] < thr < scores[-1]
    cfg = TrackerConfig.base().replace(lost_score=thr)
    res = assert_all_identical(run_all(model, cfg, frames, box, fast=False))
    assert {r.lost for r in res} == {True, False}
    assert all(r.lost == (r.score < thr) for r in res)
    assert res[0].mask_prob.shape == frames[0].shape[:2]


def test_non_finite_network_is_kept_and_lost_everywhere(bunny):
    """Random weights decode infinite boxes: every consumer keeps the previous state and
    reports the step as lost (score 0)."""
    frames, box = bunny
    model = testing.tiny_model(seed=0)  # unscaled: exp(dw) overflows
    res = assert_all_identical(run_all(model, TrackerConfig.davis(), frames[:4], box))
    assert all(r.kept_previous and r.lost and r.score == 0.0 for r in res)
    assert res[-1].box == tuple(float(v) for v in box)


def test_onnx_backend_runs_the_same_step(tmp_path, bunny):
    pytest.importorskip("onnx", reason="needs the [export] extra (onnx, onnxruntime)")
    pytest.importorskip("onnxruntime", reason="needs the [export] extra (onnxruntime)")
    from siammask_edu.export.onnx import OnnxModel, export_onnx

    frames, box = bunny
    model = scaled_tiny(seed=2)
    export_onnx(model, tmp_path)
    om = OnnxModel(tmp_path, model.config, threads=1)
    runs = run_all(om, TrackerConfig.davis(), frames, box)
    ref = assert_all_identical(runs)
    lost = assert_all_identical(run_all(om, TrackerConfig.davis().replace(lost_score=1.0),
                                        frames, box))
    assert all(r.lost for r in lost) and not any(r.kept_previous for r in ref)
    # and it follows the PyTorch network it was exported from (not bit for bit)
    torch_res = list(Tracker(model).track_sequence(frames, box))
    for a, b in zip(ref, torch_res):
        assert a.row_col == b.row_col
        np.testing.assert_allclose(a.center, b.center, atol=1e-2)


class CountingHook(StepHook):
    def __init__(self):
        self.stages, self.records = [], []

    def stage(self, name):
        self.stages.append(name)
        return super().stage(name)

    def record(self, target, name, value):
        self.records.append((target, name))


def test_hook_sees_every_stage_once_per_step_and_target(bunny):
    frames, box = bunny
    model = scaled_tiny(seed=3)
    x, y, w, h = box
    boxes = [box, (x + 10, y + 5, w * 0.8, h * 0.8), (x - 5, y + 10, w * 0.7, h)]
    hooked, plain = MultiTracker(model), MultiTracker(model)
    hooked.init(frames[0], boxes)
    plain.init(frames[0], boxes)
    hook = CountingHook()
    a, b = hooked.track(frames[1], hook=hook), plain.track(frames[1])
    for i, (ra, rb) in enumerate(zip(a, b)):
        assert_identical(ra, rb, f"target {i}")  # observing changes nothing
    per_target = ["choose", "mask", "fit"]
    assert hook.stages == ["crop", "network"] + per_target * 3
    assert set(hook.stages) == set(STAGES)
    names = ["crop", "outputs", "choice", "mask_logits", "step"]
    assert hook.records == ([(i, n) for i in range(3) for n in names]
                            + [(i, "result") for i in range(3)])


def test_stages_compose_to_the_step_and_to_postprocess_step(bunny):
    """The public stages by hand = one TrackStep; postprocess_step (the replay form with a
    mask callback) = choose_row + the RoW's logits + finish_step."""
    frames, box = bunny
    model = scaled_tiny(seed=4)
    t = Tracker(model)
    t.init(frames[0], box)
    bgr = np.ascontiguousarray(frames[1][:, :, ::-1])
    target = t.target
    center, size = target.center.copy(), target.size.copy()
    cfg = t.config
    x = t.search_crop(frames[1])
    out = run_network(model, x, target.exemplar)
    choice = choose_row(out.score, out.delta, center, size, cfg, t.anchors, t.window)
    d = choice.decision
    logits = row_mask_logits(model, out, d.row, d.col)
    assert logits.dtype == torch.float32 and logits.shape == (1, 1, 127, 127)
    by_hand = finish_step(choice, logits, t.frame_size, cfg)
    asked = []
    replay = postprocess_step(out.score, out.delta,
                              lambda r, c: asked.append((r, c)) or logits,
                              center, size, t.frame_size, cfg, t.anchors, t.window)
    assert asked == [(d.row, d.col)]
    stepper = t.stepper
    assert isinstance(stepper, TrackStep)
    res = stepper(bgr, [target])[0]
    for st in (by_hand, replay):
        assert np.array_equal(st.center, np.array(res.center))
        assert np.array_equal(st.mask, res.mask) and np.array_equal(st.polygon, res.polygon)
        assert st.lost == res.lost and (st.decision.row, st.decision.col) == res.row_col
    assert np.array_equal(target.center, np.array(res.center))  # the step advanced it


def test_step_rejects_bad_inputs(bunny):
    frames, box = bunny
    t = Tracker(scaled_tiny())
    with pytest.raises(RuntimeError, match="init"):
        t.step(frames[0])
    t.init(frames[0], box)
    with pytest.raises(ValueError, match="differs from the init"):
        t.step(np.zeros((10, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="at least one target"):
        t.stepper(frames[1], [])
    sw = Stopwatch()
    with pytest.raises(ValueError):
        bench.timed_track(t, np.zeros((10, 20, 3), np.uint8), sw)
    assert sw.ms == {}  # a failed step adds no timing row
