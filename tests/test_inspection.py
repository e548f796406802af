"""Tests of siammask_edu.inspection: trace_tracker records exactly what Tracker.track does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu import testing
from siammask_edu.config import ModelConfig
from siammask_edu.data import make_synthetic_sequence
from siammask_edu.inspection import StepRecord, trace_tracker
from siammask_edu.models import build_model
from siammask_edu.testing import skip_missing_data
from siammask_edu.tracker import Tracker


def _assert_same_as_track(records, results):
    assert len(records) == len(results)
    for rec, res in zip(records, results):
        ours = rec.result
        assert ours.row_col == res.row_col
        assert ours.polygon_source == res.polygon_source
        np.testing.assert_array_equal(ours.center, res.center)
        np.testing.assert_array_equal(ours.size, res.size)
        assert ours.score == res.score
        np.testing.assert_array_equal(ours.polygon, res.polygon)
        np.testing.assert_array_equal(ours.mask, res.mask)
        np.testing.assert_array_equal(ours.mask_prob, res.mask_prob)


def _check_record_consistency(rec: StepRecord, tracker: Tracker):
    d = rec.decision
    k, S = tracker.config.anchor_num, tracker.config.score_size
    assert rec.fg.shape == rec.pscore.shape == rec.penalty.shape == (k, S, S)
    assert rec.crop.shape == (255, 255, 3) and rec.crop.dtype == np.uint8
    # the decision is the argmax of the recorded pscore, at the recorded RoW
    assert int(np.argmax(rec.pscore)) == d.index
    assert np.unravel_index(d.index, (k, S, S)) == (d.anchor, d.row, d.col)
    assert rec.fg[d.anchor, d.row, d.col] == np.float32(d.score)
    np.testing.assert_array_equal(rec.boxes[:, d.index], d.box_in_crop)
    # the crop is the one Tracker.search_crop cut at the previous state (RGB here)
    x, y, s, _ = rec.crop_box
    assert (x + s / 2, y + s / 2) == tuple(rec.prev_center)


def test_trace_equals_track_on_a_tiny_model():
    seq = make_synthetic_sequence(5, size=(120, 160))
    model = testing.tiny_model(seed=5)
    frames = list(seq.frames)
    tracer = Tracker(model)
    records = trace_tracker(tracer, frames, seq.box)
    reference = Tracker(model)
    results = list(reference.track_sequence(frames, seq.box))
    _assert_same_as_track(records, results)
    assert tracer.center == reference.center and tracer.size == reference.size
    for rec in records:
        _check_record_consistency(rec, tracer)
        assert rec.row_mask.shape == (127, 127)  # tiny has the refinement module
    assert [r.index for r in records] == [1, 2, 3, 4]
    np.testing.assert_array_equal(records[0].frame, frames[1])  # RGB in, RGB recorded


def test_trace_base_model_vot_polygon_and_bgr():
    seq = make_synthetic_sequence(3, size=(120, 160))
    torch.manual_seed(5)
    model = build_model(ModelConfig.tiny().replace(refine=False)).eval()  # 63x63 masks
    bgr = [np.ascontiguousarray(f[:, :, ::-1]) for f in seq.frames]
    poly = seq.polygons[0].ravel()
    records = trace_tracker(Tracker(model, "base", color_order="bgr"), bgr, poly)
    results = list(Tracker(model, "base", color_order="bgr").track_sequence(bgr, poly))
    _assert_same_as_track(records, results)
    assert records[0].row_mask.shape == (63, 63)
    np.testing.assert_array_equal(records[0].frame, seq.frames[1])  # recorded as RGB


def test_trace_rejects_empty():
    with pytest.raises(ValueError):
        trace_tracker(Tracker(testing.tiny_model()), [], (0, 0, 10, 10))


def test_trace_equals_track_on_the_seeded_sharp_checkpoint(seeded_sharp):
    from siammask_edu import io
    from siammask_edu.paths import davis_sequence

    try:
        frames_dir, _ = davis_sequence("car-shadow")
    except FileNotFoundError as exc:
        skip_missing_data(f"DAVIS data not available: {exc}")
    frames = [io.read_image(p) for p in io.list_images(frames_dir)[:3]]
    box = (313, 88, 342, 194)
    tracer = Tracker(seeded_sharp)
    records = trace_tracker(tracer, frames, box)
    _assert_same_as_track(records, list(Tracker(seeded_sharp).track_sequence(frames, box)))
    for rec in records:
        _check_record_consistency(rec, tracer)
        assert rec.step.polygon_source == "mask"
    # the decision differs between frames (the test is not vacuous)
    assert len({r.decision.index for r in records}) > 1
