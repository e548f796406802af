"""One tracking step, in public stages: crop -> network -> choose RoW -> mask -> fit -> result.

This is the one implementation of the per-frame algorithm (released ``siamese_track``).
:class:`~siammask_edu.tracker.Tracker` (one target), :class:`~siammask_edu.multi.MultiTracker`
(N targets, one batched forward pass), the speed benchmark
(:func:`~siammask_edu.bench.timed_track`, a timing hook), the inspection trace
(:func:`~siammask_edu.inspection.trace_tracker`, a recording hook, shown by the
``TrackerStepper`` widget) and the onnxruntime backend
(:class:`~siammask_edu.export.onnx.OnnxModel`, a model behind the same interface) all run
:class:`TrackStep`. The stages, each a public function:

==========  ==========================================================================
stage       work
==========  ==========================================================================
``crop``    :func:`search_crop`: the 255x255 search crop at each target's state
``network`` :func:`run_network`: backbone, correlations, heads, on the stacked crops
``choose``  :func:`~siammask_edu.postprocess.choose_row`: probabilities, boxes,
            penalties, window -> the chosen anchor / RoW and the unclamped state
``mask``    :func:`row_mask_logits`: refinement (or the mask head) at that RoW only
``fit``     :func:`~siammask_edu.postprocess.finish_step`: paste-back, threshold, box
            fit, clamp, ``lost``
``result``  :func:`track_result`: the :class:`TrackResult` (not a hooked stage)
==========  ==========================================================================

The network stages (``network``, ``mask``) run under the precision's autocast and give
float32 outputs; everything after them is numpy float32 / float64, the same arithmetic in
every precision. A :class:`StepHook` observes a step: ``stage(name)`` wraps each stage's
work (a timer), ``record(target, name, value)`` receives the intermediate values (a
recorder). Hooks only observe: a step with any hook returns what it returns without one.

Frames are BGR ``uint8`` ``(H, W, 3)`` (:func:`~siammask_edu.geometry.as_bgr_uint8`);
states are frame pixels, ``(cx, cy)`` / ``(w, h)`` float64 (:mod:`.geometry`).

See book/07_online_tracker.py.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from .geometry import crop_subwindow, search_region
from .models.siammask import Exemplar, SearchOutputs
from .postprocess import StepOutput, choose_row, finish_step
from .precision import autocast_for, to_float32

STAGES = ("crop", "network", "choose", "mask", "fit")


@dataclass(frozen=True, eq=False)
class TrackResult:
    """What one tracking step returns for one target (all in frame pixels).

    Attributes:
        mask (np.ndarray[H, W] bool): ``mask_prob > seg_thr`` (strict).
        mask_prob (np.ndarray[H, W] float32 | None): released ``mask_in_img``: sigmoid
            probabilities inside the projected RoW window, **-1 outside it** (released border
            value; ``mask_prob.clip(0)`` is a probability map).
        polygon (np.ndarray[4, 2] float32): box fitted to the mask (``config.box_strategy``;
            ``"mbr"``: OpenCV ``boxPoints`` order), or the axis-aligned box (TL, TR, BR, BL)
            of the unclamped state when no mask blob is larger than ``min_polygon_area``.
        box: ``(x, y, w, h)`` floats of the clamped state (the next frame's reference).
        score: raw foreground probability of the chosen anchor, in [0, 1].
        row_col: ``(row, col)`` of the chosen RoW in the 25x25 map.
        polygon_source: ``"mask"`` or ``"box"``.
        center, size: the clamped state ``(cx, cy)``, ``(w, h)``.
        kept_previous: the network gave a non-finite box; the previous state was kept.
        lost: ``score < config.lost_score``: the tracker is guessing rather than tracking
            (see :attr:`~siammask_edu.config.TrackerConfig.lost_score` for where the
            threshold comes from). The state is updated all the same.

    See book/07_online_tracker.py.
    """

    mask: np.ndarray
    mask_prob: np.ndarray | None
    polygon: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    row_col: tuple[int, int]
    polygon_source: str
    center: tuple[float, float]
    size: tuple[float, float]
    kept_previous: bool = False
    lost: bool = False

    def _repr_html_(self) -> str:
        h, w = self.mask.shape
        k = min(1.0, 192 / max(w, 1))
        img = np.where(self.mask[:, :, None], np.uint8(220), np.uint8(40)).repeat(3, 2)
        img = cv2.resize(img, (max(1, int(w * k)), max(1, int(h * k))),
                         interpolation=cv2.INTER_NEAREST)
        pts = np.round(np.clip(self.polygon * k, -1e6, 1e6)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, (0, 200, 255), 1)
        png = base64.b64encode(cv2.imencode(".png", img)[1].tobytes()).decode()
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return (f"<div><img src='data:image/png;base64,{png}'/><br/><code>box=({box}) "
                f"score={self.score:.3f} RoW={self.row_col} polygon from {self.polygon_source}"
                f"{' (kept previous state)' if self.kept_previous else ''}"
                f"{' LOST' if self.lost else ''}</code></div>")


@dataclass(eq=False)
class TargetState:
    """Everything a step needs to know about one target; :class:`TrackStep` advances
    ``center`` and ``size`` in place.

    Attributes:
        exemplar: the template's :class:`~siammask_edu.models.siammask.Exemplar` (batch 1,
            float32 kernels), computed once at init.
        avg_chans (np.ndarray[3] float64): padding colour, the init frame's mean, BGR.
        frame_hw: ``(H, W)`` of the init frame; every frame must have it.
        center, size (np.ndarray[2] float64): current state ``(cx, cy)``, ``(w, h)``,
            frame pixels.

    See book/07_online_tracker.py.
    """

    exemplar: Exemplar
    avg_chans: np.ndarray
    frame_hw: tuple[int, int]
    center: np.ndarray
    size: np.ndarray


class StepHook:
    """Observer of :class:`TrackStep`; the base class observes nothing. Subclass it and
    override either method.

    * ``stage(name)`` returns a context manager around one stage's work, ``name`` in
      :data:`STAGES`. ``crop`` and ``network`` run once per step (for all targets);
      ``choose``, ``mask`` and ``fit`` once per target.
    * ``record(target, name, value)`` receives, for target ``target`` (index in the
      step's target list), after that target's stages: ``"crop"`` (Tensor[1, 3, 255, 255]
      float32 BGR 0..255, CPU), ``"outputs"`` (its batch-1
      :class:`~siammask_edu.models.siammask.SearchOutputs`, float32), ``"choice"``
      (:class:`~siammask_edu.postprocess.RowChoice`), ``"mask_logits"`` (float32 Tensor of
      the chosen RoW), ``"step"`` (:class:`~siammask_edu.postprocess.StepOutput`) and
      ``"result"`` (:class:`TrackResult`).

    A hook must not modify what it is given.

    See book/11_speed.py (timing) and book/07_online_tracker.py (recording).
    """

    def stage(self, name: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def record(self, target: int, name: str, value: Any) -> None:
        return None


_NO_HOOK = StepHook()


def search_crop(bgr: np.ndarray, center, size, avg_chans, config,
                rounding: str = "python") -> torch.Tensor:
    """Stage ``crop``: the search crop at a target's state (released
    ``get_subwindow_tracking`` with side ``S`` from
    :func:`~siammask_edu.geometry.search_region`).

    Args:
        bgr (np.ndarray[H, W, 3] uint8): the frame, BGR.
        center, size: the state, frame pixels.
        avg_chans: padding colour, BGR.
        config: a :class:`~siammask_edu.config.TrackerConfig`.
        rounding: ``"python"`` (released) or ``"half_up"`` (pysot) crop placement.

    Returns:
        Tensor[1, 3, 255, 255] float32, BGR 0..255, CPU.

    See book/07_online_tracker.py.
    """
    _, S = search_region(size, config.exemplar_size, config.instance_size, config.context_amount)
    return crop_subwindow(bgr, center, config.instance_size, max(1, S), avg_chans,
                          rounding=rounding)


def run_network(model, x: torch.Tensor, exemplar: Exemplar, *, fast: bool = True,
                precision: str = "fp32", device="cpu") -> SearchOutputs:
    """Stage ``network``: the search branch on a batch of crops, under ``precision``'s
    autocast, outputs back in float32.

    Args:
        model: a three-branch SiamMask, or any object with its ``track`` interface
            (:class:`~siammask_edu.export.onnx.OnnxModel`).
        x (Tensor[B, 3, 255, 255] float32): search crops on the model's device.
        exemplar: batch 1 (broadcast) or batch B.
        fast: ``True``: the exemplar kernels as computed at init, no dense mask head.
            ``False``: the released work, the kernels recomputed from ``zf`` and the dense
            3969-channel mask head every step (models with ``heads()``; others ignore it).
        precision, device: see :func:`~siammask_edu.precision.autocast_for`.

    Returns:
        :class:`~siammask_edu.models.siammask.SearchOutputs`, float32.

    See book/11_speed.py.
    """
    with torch.inference_mode(), autocast_for(precision, device):
        ex = exemplar
        if not fast and hasattr(model, "heads"):
            ex = type(ex)(ex.zf, {n: h.kernel(ex.zf) for n, h in model.heads().items()})
        return to_float32(model.track(x, ex, mask_head=not fast))


def row_mask_logits(model, out: SearchOutputs, row: int, col: int, *,
                    precision: str = "fp32", device="cpu") -> torch.Tensor:
    """Stage ``mask``: the mask of one RoW only -- refinement when the model has it
    (``refine_at``), else the mask head (``mask_at``) -- under ``precision``'s autocast.

    Args:
        model: as :func:`run_network`.
        out: the search outputs of one target (batch 1).
        row, col: the chosen RoW.
        precision, device: see :func:`~siammask_edu.precision.autocast_for`.

    Returns:
        Tensor[1, 1, m, m] float32 logits (m = 127 refined, 63 mask head).

    Raises:
        ValueError: a RoW outside the response map.

    See book/07_online_tracker.py.
    """
    at = model.refine_at if model.refine is not None else model.mask_at
    with torch.inference_mode(), autocast_for(precision, device):
        return to_float32(at(out, row, col))


def track_result(step: StepOutput) -> TrackResult:
    """Stage ``result``: a post-processed step as a :class:`TrackResult` (box from the
    clamped state, score clipped to [0, 1], ``lost`` as decided by
    :func:`~siammask_edu.postprocess.finish_step`).

    See book/07_online_tracker.py.
    """
    cx, cy = float(step.center[0]), float(step.center[1])
    w, h = float(step.size[0]), float(step.size[1])
    d = step.decision
    return TrackResult(mask=step.mask, mask_prob=step.mask_prob, polygon=step.polygon,
                       box=(cx - w / 2, cy - h / 2, w, h),
                       score=min(1.0, max(0.0, d.score)), row_col=(d.row, d.col),
                       polygon_source=step.polygon_source, center=(cx, cy), size=(w, h),
                       kept_previous=step.kept_previous, lost=step.lost)


def slice_outputs(out: SearchOutputs, i: int) -> SearchOutputs:
    """Target ``i`` of a batched :class:`SearchOutputs` (views, batch 1).

    See book/11_speed.py.
    """
    sl = slice(i, i + 1)
    return SearchOutputs(
        out.score[sl], None if out.delta is None else out.delta[sl],
        None if out.mask_logits is None else out.mask_logits[sl], out.mask_corr[sl],
        out.xf[sl], [f[sl] for f in out.features])


def stack_exemplars(exemplars: Sequence[Exemplar]) -> Exemplar:
    """Concatenate batch-1 exemplars into one batch-N :class:`Exemplar` (kernels and ``zf``;
    backbone features are not needed for tracking and are dropped).

    Raises:
        ValueError: for an empty sequence.

    See book/11_speed.py.
    """
    if not exemplars:
        raise ValueError("need at least one exemplar")
    names = exemplars[0].kernels.keys()
    return Exemplar(zf=torch.cat([e.zf for e in exemplars]),
                    kernels={n: torch.cat([e.kernels[n] for e in exemplars]) for n in names})


class TrackStep:
    """One tracking step for one or more targets of a frame, composed of the public stages
    (module docstring). The arguments are those of
    :class:`~siammask_edu.tracker.Tracker`, which builds it (:attr:`Tracker.stepper`).

    Args:
        model: the network (``track``, ``refine_at`` / ``mask_at``, ``refine``).
        config: a :class:`~siammask_edu.config.TrackerConfig`.
        anchors, window: from :func:`~siammask_edu.anchors.anchors_for`.
        device: device of the network.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (validated by the tracker).
        fast: ``True``: exemplar kernels from init, no dense mask head, mask thresholded
            and traced on the RoW's window; ``False``: the released work (identical
            post-processing outputs; network outputs equal up to float rounding).
        crop_rounding: ``"python"`` or ``"half_up"``.

    See book/07_online_tracker.py.
    """

    def __init__(self, model, config, anchors: np.ndarray, window: np.ndarray, *,
                 device="cpu", precision: str = "fp32", fast: bool = True,
                 crop_rounding: str = "python") -> None:
        self.model, self.config = model, config
        self.anchors, self.window = anchors, window
        self.device, self.precision = torch.device(device), precision
        self.fast, self.crop_rounding = bool(fast), crop_rounding

    def __call__(self, bgr: np.ndarray, targets: Sequence[TargetState],
                 exemplar: Exemplar | None = None, hook: StepHook | None = None
                 ) -> list[TrackResult]:
        """Track every target into ``bgr`` with one forward pass; advance their states.

        Args:
            bgr (np.ndarray[H, W, 3] uint8): the frame, BGR, C-contiguous.
            targets: one :class:`TargetState` per target; ``center`` and ``size`` are
                replaced by the new (clamped) states once every target's step succeeded.
            exemplar: the targets' exemplars already stacked (batch N, in target order);
                default: the one exemplar for N = 1, else :func:`stack_exemplars`.
            hook: a :class:`StepHook` (timing, recording); ``None``: none.

        Returns:
            One :class:`TrackResult` per target, in order.

        Raises:
            ValueError: no targets, or a frame whose size is not a target's ``frame_hw``.
        """
        hook = _NO_HOOK if hook is None else hook
        targets = list(targets)
        if not targets:
            raise ValueError("need at least one target")
        hw = (int(bgr.shape[0]), int(bgr.shape[1]))
        for t in targets:
            if tuple(t.frame_hw) != hw:
                raise ValueError(f"frame size {hw[1]}x{hw[0]} (WxH) differs from the init "
                                 f"frame's {t.frame_hw[1]}x{t.frame_hw[0]}")
        n, cfg = len(targets), self.config
        with hook.stage("crop"):
            crops = [search_crop(bgr, t.center, t.size, t.avg_chans, cfg, self.crop_rounding)
                     for t in targets]
            x = (crops[0] if n == 1 else torch.cat(crops)).to(self.device)
        if exemplar is None:
            exemplar = targets[0].exemplar if n == 1 else stack_exemplars(
                [t.exemplar for t in targets])
        kw = {"precision": self.precision, "device": self.device}
        steps = []
        with torch.inference_mode():
            with hook.stage("network"):
                out = run_network(self.model, x, exemplar, fast=self.fast, **kw)
            for i, t in enumerate(targets):
                oi = out if n == 1 else slice_outputs(out, i)
                with hook.stage("choose"):
                    choice = choose_row(oi.score, oi.delta, t.center, t.size, cfg,
                                        self.anchors, self.window)
                d = choice.decision
                with hook.stage("mask"):
                    logits = row_mask_logits(self.model, oi, d.row, d.col, **kw)
                with hook.stage("fit"):
                    step = finish_step(choice, logits, hw, cfg, window_only=self.fast)
                steps.append(step)
                for name, value in (("crop", crops[i]), ("outputs", oi), ("choice", choice),
                                    ("mask_logits", logits), ("step", step)):
                    hook.record(i, name, value)
        results = []
        for i, (t, step) in enumerate(zip(targets, steps)):
            t.center, t.size = step.center, step.size
            results.append(track_result(step))
            hook.record(i, "result", results[-1])
        return results


__all__ = ["STAGES", "StepHook", "TargetState", "TrackResult", "TrackStep", "row_mask_logits",
           "run_network", "search_crop", "slice_outputs", "stack_exemplars", "track_result"]
