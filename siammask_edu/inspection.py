"""Look inside the online tracker: one :class:`StepRecord` per frame, from public pieces.

:func:`trace_tracker` runs a :class:`~siammask_edu.tracker.Tracker` over a sequence the way
:meth:`Tracker.track <siammask_edu.tracker.Tracker.track>` does -- search crop at the
current state (:meth:`Tracker.search_crop`), the shared model, then
:func:`~siammask_edu.postprocess.postprocess_step` -- but keeps what ``track`` throws away:
the crop, the foreground probabilities, the penalties, the penalised score ``pscore`` that
is arg-maxed, the chosen RoW's mask before it is pasted, and the decision. After each step
it hands the new state back with :meth:`Tracker.set_target`, so the tracker ends exactly
where ``track`` would have left it (``tests/test_inspection.py`` checks that every decision,
state, mask and polygon equals ``Tracker.track``'s).

(The module is not called ``inspect`` so that ``from siammask_edu import inspection``
cannot shadow the standard library's ``inspect`` in a notebook.)

See book/07_online_tracker.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .geometry import as_bgr_uint8, crop_subwindow, exemplar_crop_size, search_region
from .postprocess import (
    Decision,
    StepOutput,
    change_penalty,
    decode_boxes,
    fg_probability,
    postprocess_step,
)
from .tracker import Tracker, TrackResult


@dataclass(frozen=True, eq=False)
class StepRecord:
    """Everything one tracking step computed, for drawing and checking.

    Maps are in the anchor table's layout ``(k, S, S)`` = ``(anchor, row, col)``
    (k = 5 anchors, S = 25).

    Attributes:
        index: position of the frame in the sequence (1 = the first tracked frame).
        frame (np.ndarray[H, W, 3] uint8): the frame, **RGB**.
        crop (np.ndarray[255, 255, 3] uint8): the search crop, **RGB** (the network saw
            the same pixels in BGR order).
        prev_center, prev_size (np.ndarray[2] float64): the state the crop was cut at,
            frame pixels.
        scale_x: frame -> crop scale of the box deltas (``127 / s_z``).
        crop_side: ``S``, side of the crop in frame pixels (int).
        fg (np.ndarray[k, S, S] float32): foreground probability of every anchor.
        penalty (np.ndarray[k, S, S] float64): scale/aspect change penalty.
        pscore (np.ndarray[k, S, S] float64): ``(1 - wi) * penalty * fg + wi * window``,
            the value that is arg-maxed.
        boxes (np.ndarray[4, k*S*S] float32): decoded ``(cx, cy, w, h)`` of every anchor,
            crop pixels relative to the crop centre.
        row_mask (np.ndarray[m, m] float32 | None): sigmoid of the chosen RoW's mask
            (m = 127 sharp, 63 base), before it is pasted into the frame.
        step (:class:`~siammask_edu.postprocess.StepOutput`): decision, clamped state,
            frame mask, polygon.

    See book/07_online_tracker.py.
    """

    index: int
    frame: np.ndarray
    crop: np.ndarray
    prev_center: np.ndarray
    prev_size: np.ndarray
    scale_x: float
    crop_side: int
    fg: np.ndarray
    penalty: np.ndarray
    pscore: np.ndarray
    boxes: np.ndarray
    row_mask: np.ndarray | None
    step: StepOutput

    @property
    def decision(self) -> Decision:
        """The chosen anchor, its RoW and the unclamped update."""
        return self.step.decision

    @property
    def crop_box(self) -> tuple[float, float, float, float]:
        """``(x, y, S, S)``: the square the released code maps the mask back with, frame
        pixels (centred on ``prev_center``; the pixels actually cut sit ~1 px up-left, see
        :func:`~siammask_edu.geometry.crop_subwindow`)."""
        s = float(self.crop_side)
        return (float(self.prev_center[0]) - s / 2, float(self.prev_center[1]) - s / 2, s, s)

    @property
    def result(self) -> TrackResult:
        """The :class:`~siammask_edu.tracker.TrackResult` that ``Tracker.track`` returns."""
        st, d = self.step, self.step.decision
        cx, cy = float(st.center[0]), float(st.center[1])
        w, h = float(st.size[0]), float(st.size[1])
        return TrackResult(mask=st.mask, mask_prob=st.mask_prob, polygon=st.polygon,
                           box=(cx - w / 2, cy - h / 2, w, h),
                           score=min(1.0, max(0.0, d.score)), row_col=(d.row, d.col),
                           polygon_source=st.polygon_source, center=(cx, cy), size=(w, h),
                           kept_previous=st.kept_previous)


def _exemplar_of(tracker: Tracker, first_bgr: np.ndarray):
    """The template of ``tracker``'s init, recomputed from public state (released
    ``siamese_init``: frame-mean padding colour, ``s_z`` rounded at init)."""
    cfg = tracker.config
    avg = np.mean(first_bgr, axis=(0, 1))
    s_z = max(1, exemplar_crop_size(np.asarray(tracker.size), cfg.context_amount))
    z = crop_subwindow(first_bgr, tracker.center, cfg.exemplar_size, s_z, avg,
                       rounding=tracker.crop_rounding)
    with torch.inference_mode():
        return tracker.model.template(z.to(tracker.device))


def _keeping_mask_fn(model, out, kept: dict):
    """``(row, col) -> logits`` as ``Tracker.track`` builds it, remembering the logits."""
    def mask_fn(r, c):
        logits = model.refine_at(out, r, c) if model.refine is not None \
            else model.mask_at(out, r, c)
        kept["logits"] = logits
        return logits

    return mask_fn


def trace_tracker(tracker: Tracker, frames: Iterable, box: Sequence[float]) -> list[StepRecord]:
    """Initialise ``tracker`` on the first frame and record every later step.

    Args:
        tracker: a :class:`~siammask_edu.tracker.Tracker` (its model may be shared); it is
            (re-)initialised here and left in the state ``track`` would leave it in.
        frames: the frames, ``np.ndarray (H, W, 3) uint8`` in the tracker's colour order
            (RGB by default), all of the first frame's size.
        box: ``(x, y, w, h)`` on the first frame, or 8 numbers (a VOT rotated box).

    Returns:
        One :class:`StepRecord` per frame after the first (N frames -> N - 1 records).

    Raises:
        ValueError: for an empty ``frames`` or the errors of ``Tracker.init`` / ``track``.

    See book/07_online_tracker.py.
    """
    first, it = tracker.init_sequence(frames, box)
    exemplar = _exemplar_of(tracker, as_bgr_uint8(first, tracker.color_order))
    cfg, model = tracker.config, tracker.model
    k, S = cfg.anchor_num, cfg.score_size
    records = []
    for index, frame in enumerate(it, start=1):
        center, size = np.array(tracker.center), np.array(tracker.size)
        x = tracker.search_crop(frame)  # (1, 3, 255, 255) BGR 0..255
        scale_x, side = search_region(size, cfg.exemplar_size, cfg.instance_size,
                                      cfg.context_amount)
        kept: dict = {}
        with torch.inference_mode():
            out = model.track(x.to(tracker.device), exemplar, mask_head=False)
            step = postprocess_step(out.score, out.delta, _keeping_mask_fn(model, out, kept),
                                    center, size, tracker.frame_size, cfg, tracker.anchors,
                                    tracker.window)
        fg = fg_probability(out.score)
        boxes = decode_boxes(out.delta, tracker.anchors)
        with np.errstate(all="ignore"):
            penalty = change_penalty(boxes, size * scale_x, cfg.penalty_k)
            wi = cfg.window_influence
            pscore = penalty * fg.astype(np.float64) * (1 - wi) + tracker.window * wi
        row_mask = None
        if "logits" in kept:
            t = kept["logits"].float().sigmoid()
            m = round(t.numel() ** 0.5)
            row_mask = t.reshape(m, m).cpu().numpy()
        tracker.set_target(step.center, step.size)
        bgr = as_bgr_uint8(frame, tracker.color_order)
        crop_rgb = np.ascontiguousarray(
            x[0].permute(1, 2, 0).numpy().round().astype(np.uint8)[:, :, ::-1])
        records.append(StepRecord(
            index=index, frame=np.ascontiguousarray(bgr[:, :, ::-1]), crop=crop_rgb,
            prev_center=center, prev_size=size, scale_x=float(scale_x), crop_side=int(side),
            fg=fg.reshape(k, S, S), penalty=penalty.reshape(k, S, S),
            pscore=pscore.reshape(k, S, S), boxes=boxes, row_mask=row_mask, step=step))
    return records


__all__ = ["StepRecord", "trace_tracker"]
