"""Batched multi-object tracking equals independent trackers (tiny model, synthetic video)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu import testing
from siammask_edu.data import make_synthetic_sequence
from siammask_edu.multi import MultiTracker, merge_masks
from siammask_edu.tracker import Tracker


def _iou(a, b):
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else np.logical_and(a, b).sum() / u


@pytest.mark.parametrize("max_batch", [None, 2])
def test_batched_equals_independent_trackers(max_batch):
    seq = make_synthetic_sequence(4, size=(120, 160))
    frames = list(seq.frames)
    x, y, w, h = seq.box
    boxes = [seq.box, (x + 6, y + 4, w * 0.8, h * 0.9), (max(0, x - 8), y + 2, w, h * 0.7)]
    model = testing.tiny_model(seed=3)
    mt = MultiTracker(model, max_batch=max_batch)
    mt.init(frames[0], boxes)
    singles = [Tracker(model) for _ in boxes]
    for t, b in zip(singles, boxes):
        t.init(frames[0], b)
    for f in frames[1:]:
        batched = mt.track(f)
        alone = [t.track(f) for t in singles]
        assert len(batched) == len(boxes)
        for rb, ra in zip(batched, alone):
            assert rb.row_col == ra.row_col
            np.testing.assert_allclose(rb.center, ra.center, atol=1e-3)
            np.testing.assert_allclose(rb.size, ra.size, atol=1e-3)
            assert abs(rb.score - ra.score) < 1e-4
            assert _iou(rb.mask, ra.mask) >= 0.99


def test_multi_errors_and_merge():
    model = testing.tiny_model(seed=3)
    mt = MultiTracker(model)
    with pytest.raises(RuntimeError):
        mt.track(np.zeros((120, 160, 3), np.uint8))
    with pytest.raises(ValueError):
        mt.init(np.zeros((120, 160, 3), np.uint8), [])
    with pytest.raises(ValueError):
        MultiTracker(model, max_batch=0)
    seq = make_synthetic_sequence(2, size=(120, 160))
    mt.init(seq.frames[0], [seq.box, seq.box])
    res = mt.track(seq.frames[1])
    label = merge_masks(res, mt.config.seg_thr)
    assert label.shape == res[0].mask.shape and label.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1}  # identical targets: ties go to the first id
    with pytest.raises(ValueError):
        merge_masks([], 0.3)


def test_stacked_exemplar_broadcast_matches_single():
    from siammask_edu.multi import slice_outputs, stack_exemplars

    model = testing.tiny_model(seed=1)
    torch.manual_seed(0)
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    with torch.inference_mode():
        exs = [model.template(z[i:i + 1]) for i in range(2)]
        out = model.track(x, stack_exemplars(exs), mask_head=False)
        for i in range(2):
            one = model.track(x[i:i + 1], exs[i], mask_head=False)
            torch.testing.assert_close(slice_outputs(out, i).score, one.score, rtol=1e-4,
                                       atol=1e-4)
    with pytest.raises(ValueError):
        stack_exemplars([])


def test_multitracker_is_public_at_the_top_level():
    import siammask_edu
    from siammask_edu.multi import MultiTracker

    assert siammask_edu.MultiTracker is MultiTracker and "MultiTracker" in siammask_edu.__all__
