"""Batched multi-object tracking: N targets of one video in one forward pass.

:class:`MultiTracker` keeps one :class:`~siammask_edu.tracker.Tracker` per target (state,
template, window, padding colour) and, per frame, cuts the N search crops, stacks them into
one ``(N, 3, 255, 255)`` batch, runs the backbone and the heads once on the batch with the
N exemplar kernels stacked, then post-processes each target on its own slice (refinement at
each target's own RoW): the one :class:`~siammask_edu.step.TrackStep` of
:class:`~siammask_edu.tracker.Tracker`, given N targets. With N = 1 the results are
:meth:`Tracker.track`'s, bit for bit. The results equal N independent trackers up to float rounding of
the batched convolutions (same RoW, boxes within 1e-3 px on the test sequences).

The released DAVIS-2017 driver tracks each object id with its own tracker and merges the
maps by arg-max; :func:`merge_masks` is that merge.

See book/11_speed.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .geometry import as_bgr_uint8
from .io import merge_objects
from .models.siammask import Exemplar
from .step import StepHook, slice_outputs, stack_exemplars
from .tracker import Tracker, TrackResult


class MultiTracker:
    """Track N targets of one video with one batched forward pass per frame.

    Args:
        model, config, device, color_order, crop_rounding, fast: as
            :class:`~siammask_edu.tracker.Tracker` (shared by all targets; with ``fast`` the
            BN-folded copy is built once).
        precision: ``"fp32"`` (default, exact), ``"bf16"`` or ``"fp16"`` (CUDA only), as
            :class:`~siammask_edu.tracker.Tracker`: the templates, the batched search
            forward and each target's refinement run under that autocast; outputs are
            converted to float32 before post-processing.
        max_batch: split the N crops into forward passes of at most this many (memory cap);
            ``None``: all at once.

    Raises:
        ValueError: as :class:`~siammask_edu.tracker.Tracker` (precision included), or
            ``max_batch < 1``.

    See book/11_speed.py.
    """

    def __init__(self, model, config="davis", device="cpu", color_order: str = "rgb",
                 crop_rounding: str = "python", fast: bool = True,
                 max_batch: int | None = None, precision: str = "fp32") -> None:
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 or None, got {max_batch}")
        self._kw = {"config": config, "device": device, "color_order": color_order,
                    "crop_rounding": crop_rounding, "fast": fast, "precision": precision}
        self._source = model
        probe = Tracker(model, **self._kw)
        self._probe = probe
        self.model, self.config, self.device = probe.model, probe.config, probe.device
        self.precision = probe.precision
        self.fast, self.max_batch = fast, max_batch
        self.trackers: list[Tracker] = []
        self._batched: Exemplar | None = None

    def __len__(self) -> int:
        return len(self.trackers)

    def init(self, frame, boxes: Sequence[Sequence[float]]) -> None:
        """Start tracking one target per box (``(x, y, w, h)`` or 8-number VOT polygons).

        Raises:
            ValueError: no boxes, or a bad frame / box (as :meth:`Tracker.init`).

        See book/11_speed.py.
        """
        if len(boxes) == 0:
            raise ValueError("need at least one box")
        trackers = []
        for box in boxes:
            t = Tracker(self._source, **self._kw)
            if np.size(box) == 8:
                t.init_polygon(frame, box)
            else:
                t.init(frame, box)
            trackers.append(t)
        self.trackers = trackers
        self._batched = stack_exemplars([t.target.exemplar for t in trackers])

    def track(self, frame, hook: StepHook | None = None) -> list[TrackResult]:
        """Track every target into ``frame``; one :class:`TrackResult` per target, in the
        order of the init boxes.

        Args:
            frame: in the colour order given at construction.
            hook: an optional :class:`~siammask_edu.step.StepHook`, passed to each chunk's
                step (its ``target`` index counts within the chunk of ``max_batch``).

        Raises:
            RuntimeError: before :meth:`init`.
            ValueError: a bad frame or a frame size different from the init frame's.

        See book/11_speed.py.
        """
        if not self.trackers:
            raise RuntimeError("call MultiTracker.init(frame, boxes) first")
        bgr = as_bgr_uint8(frame, self._kw["color_order"])
        n = len(self.trackers)
        step_n = n if self.max_batch is None else self.max_batch
        stepper = self._probe.stepper  # shared settings; each target's state is its own
        results: list[TrackResult] = []
        for lo in range(0, n, step_n):
            hi = min(n, lo + step_n)
            ex = self._batched
            if (lo, hi) != (0, n):
                ex = Exemplar(zf=ex.zf[lo:hi], kernels={k: v[lo:hi] for k, v in ex.kernels.items()})
            results.extend(stepper(bgr, [t.target for t in self.trackers[lo:hi]], ex, hook))
        return results


def merge_masks(results: Sequence[TrackResult], seg_thr: float) -> np.ndarray:
    """Released DAVIS-2017 fusion: label ``argmax_k mask_prob_k + 1`` where the maximum is
    ``> seg_thr``, else 0 (background); :func:`siammask_edu.io.merge_objects` on the
    results' ``mask_prob`` maps.

    Args:
        results: one :class:`TrackResult` per object id, in id order (``mask_prob`` set).
        seg_thr: the tracker's ``config.seg_thr``.

    Returns:
        np.ndarray[H, W] uint8 labels (0 = background, k = object k).

    Raises:
        ValueError: no results or a result without ``mask_prob``.

    See book/11_speed.py.
    """
    if not results or any(r.mask_prob is None for r in results):
        raise ValueError("need at least one result, each with mask_prob")
    return merge_objects(np.stack([r.mask_prob for r in results]), seg_thr)


__all__ = ["MultiTracker", "merge_masks", "slice_outputs", "stack_exemplars"]
# slice_outputs and stack_exemplars live in siammask_edu.step; they stay importable from here.
