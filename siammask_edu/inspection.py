"""Look inside the online tracker: one :class:`StepRecord` per frame, recorded from the step.

:func:`trace_tracker` runs a :class:`~siammask_edu.tracker.Tracker` over a sequence with
:meth:`Tracker.track <siammask_edu.tracker.Tracker.track>` itself, given a recording
:class:`~siammask_edu.step.StepHook`: the tracker's one
:class:`~siammask_edu.step.TrackStep` hands the hook what ``track`` otherwise throws away --
the crop, the foreground probabilities, the penalties, the penalised score ``pscore`` that
is arg-maxed, the chosen RoW's mask before it is pasted, the decision -- and the
:class:`~siammask_edu.tracker.TrackResult` it returns. Nothing is recomputed, so every
record, ``lost`` included, is the tracker's own step, whatever its ``fast`` / ``precision``
/ model backend.

(The module is not called ``inspect`` so that ``from siammask_edu import inspection``
cannot shadow the standard library's ``inspect`` in a notebook.)

See book/07_online_tracker.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import as_bgr_uint8
from .postprocess import Decision, StepOutput, row_probability
from .step import StepHook
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
            frame mask, polygon, ``lost``.
        result (:class:`~siammask_edu.tracker.TrackResult`): what ``Tracker.track``
            returned for this frame (the same object).

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
    result: TrackResult

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


class StepRecorder(StepHook):
    """A :class:`~siammask_edu.step.StepHook` that keeps every recorded value of the last
    step: ``values[target][name]`` (names as :class:`~siammask_edu.step.StepHook`).

    See book/07_online_tracker.py.
    """

    def __init__(self) -> None:
        self.values: dict[int, dict[str, Any]] = {}

    def record(self, target: int, name: str, value: Any) -> None:
        self.values.setdefault(target, {})[name] = value


def step_record(index: int, frame_bgr: np.ndarray, values: dict[str, Any], config
                ) -> StepRecord:
    """A :class:`StepRecord` from one target's recorded values (:class:`StepRecorder`).

    Args:
        index: position of the frame in the sequence.
        frame_bgr (np.ndarray[H, W, 3] uint8): the frame as the step saw it, BGR.
        values: ``StepRecorder.values[target]`` of that step.
        config: the tracker's :class:`~siammask_edu.config.TrackerConfig` (map shape).

    See book/07_online_tracker.py.
    """
    k, S = config.anchor_num, config.score_size
    choice, logits = values["choice"], values["mask_logits"]
    sc = choice.scores
    crop_rgb = np.ascontiguousarray(
        values["crop"][0].permute(1, 2, 0).numpy().round().astype(np.uint8)[:, :, ::-1])
    return StepRecord(
        index=index, frame=np.ascontiguousarray(frame_bgr[:, :, ::-1]), crop=crop_rgb,
        prev_center=choice.prev_center, prev_size=choice.prev_size, scale_x=choice.scale_x,
        crop_side=choice.crop_side, fg=sc.fg.reshape(k, S, S),
        penalty=sc.penalty.reshape(k, S, S), pscore=sc.pscore.reshape(k, S, S),
        boxes=sc.boxes, row_mask=None if logits is None else row_probability(logits),
        step=values["step"], result=values["result"])


def trace_tracker(tracker: Tracker, frames: Iterable, box: Sequence[float]) -> list[StepRecord]:
    """Initialise ``tracker`` on the first frame and record every later step.

    Args:
        tracker: a :class:`~siammask_edu.tracker.Tracker` (its model may be shared); it is
            (re-)initialised here and left in the state ``track`` leaves it in (it is
            ``track`` that runs).
        frames: the frames, ``np.ndarray (H, W, 3) uint8`` in the tracker's colour order
            (RGB by default), all of the first frame's size.
        box: ``(x, y, w, h)`` on the first frame, or 8 numbers (a VOT rotated box).

    Returns:
        One :class:`StepRecord` per frame after the first (N frames -> N - 1 records);
        ``record.result`` is the :class:`~siammask_edu.tracker.TrackResult` that
        ``track`` returned.

    Raises:
        ValueError: for an empty ``frames`` or the errors of ``Tracker.init`` / ``track``.

    See book/07_online_tracker.py.
    """
    _, it = tracker.init_sequence(frames, box)
    records = []
    for index, frame in enumerate(it, start=1):
        bgr = as_bgr_uint8(frame, tracker.color_order)
        recorder = StepRecorder()
        tracker.step(bgr, hook=recorder)
        records.append(step_record(index, bgr, recorder.values[0], tracker.config))
    return records


__all__ = ["StepRecord", "StepRecorder", "step_record", "trace_tracker"]
