"""One tracking step after the network: score, penalties, window, update, mask, polygon, clamp.

This is released ``siamese_track`` (``tools/test.py``) from the network outputs on, split into
small functions. They form two halves around the one network call that depends on the
decision, the chosen RoW's mask:

1. :func:`choose_row`: probabilities, decoded boxes, penalties, window -> the chosen anchor
   and RoW and the unclamped new state (:func:`score_anchors`, :func:`pick_anchor`);
2. :func:`finish_step`: that RoW's mask logits -> paste-back, threshold, box fit
   (:func:`~siammask_edu.boxes.box_from_contour`), clamped state, ``lost``.

:class:`~siammask_edu.step.TrackStep` runs the network for the RoW between them;
:func:`postprocess_step` composes both around a ``(row, col) -> logits`` callable, for
replaying recorded network outputs. Data types follow the released code
under numpy 2 so that a step fed the released network outputs reproduces the released state
bit for bit: network outputs, anchors and decoded boxes are float32; window, penalty,
pscore and the state ``(center, size)`` are float64 (a float32 value divided by the float64
scale is float64, as numpy 2 computes it; the casts are written out so numpy 1.x agrees).

Coordinates: ``center``/``size`` are frame pixels (``geometry.py`` convention); decoded
boxes are search-crop pixels relative to the crop centre; the chosen RoW is ``(row, col)``
of the 25x25 map.

See book/07_online_tracker.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from .anchors import unravel_anchor_index
from .boxes import box_from_contour, fit_box, largest_contour
from .geometry import search_region


def fg_probability(score_logits) -> np.ndarray:
    """Foreground probability of every anchor (released softmax over ``{bg, fg}``).

    Args:
        score_logits (Tensor[1, 2k, S, S] | np.ndarray): logits, layout ``[bg x k, fg x k]``.

    Returns:
        np.ndarray[k*S*S] float32, flat order ``a*S*S + r*S + c``.

    See book/07_online_tracker.py.
    """
    t = torch.as_tensor(score_logits).float()
    t = t.reshape(1, -1, *t.shape[-2:])
    pairs = t.permute(1, 2, 3, 0).contiguous().view(2, -1).permute(1, 0)  # (k*S*S, 2)
    return torch.softmax(pairs, dim=1)[:, 1].cpu().numpy()


def decode_boxes(delta, anchors: np.ndarray) -> np.ndarray:
    """Anchor regression -> boxes (released: no clipping, no variance scaling).

    ``x = dx*aw + acx``, ``y = dy*ah + acy``, ``w = exp(dw)*aw``, ``h = exp(dh)*ah``.

    Args:
        delta (Tensor[1, 4k, S, S] | np.ndarray): layout ``[dx x k, dy x k, dw x k, dh x k]``.
        anchors (np.ndarray[k*S*S, 4] float32): ``(cx, cy, w, h)`` table.

    Returns:
        np.ndarray[4, k*S*S] float32 rows ``(cx, cy, w, h)`` in crop pixels relative to the
        crop centre.

    See book/07_online_tracker.py.
    """
    t = torch.as_tensor(delta).float()
    t = t.reshape(1, -1, *t.shape[-2:])
    d = t.permute(1, 2, 3, 0).contiguous().view(4, -1).cpu().numpy().copy()  # (4, N)
    d[0, :] = d[0, :] * anchors[:, 2] + anchors[:, 0]
    d[1, :] = d[1, :] * anchors[:, 3] + anchors[:, 1]
    with np.errstate(over="ignore"):
        d[2, :] = np.exp(d[2, :]) * anchors[:, 2]
        d[3, :] = np.exp(d[3, :]) * anchors[:, 3]
    return d


def _change(r):
    return np.maximum(r, 1.0 / r)


def _sz(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def change_penalty(boxes: np.ndarray, size_in_crop, penalty_k: float) -> np.ndarray:
    """Scale and aspect-ratio change penalty (SiamRPN; released ``siamese_track``).

    ``penalty = exp(-(r_c * s_c - 1) * k)`` with ``s_c = change(sz(w, h) / sz(tw, th))``,
    ``r_c = change((tw / th) / (w / h))``, ``change(t) = max(t, 1/t)`` and
    ``sz(a, b) = sqrt((a + p)(b + p))``, ``p = (a + b) / 2``.

    Args:
        boxes (np.ndarray[4, N] float32): decoded boxes (only rows 2, 3 are used).
        size_in_crop: previous ``(w, h)`` times ``scale_x`` (float64, crop pixels).
        penalty_k: strength.

    Returns:
        np.ndarray[N] float64 in ``(0, 1]``.

    See book/07_online_tracker.py.
    """
    tw, th = float(size_in_crop[0]), float(size_in_crop[1])
    w, h = boxes[2, :], boxes[3, :]
    with np.errstate(all="ignore"):
        s_c = _change(_sz(w, h).astype(np.float64) / _sz(tw, th))
        r_c = _change((tw / th) / (w / h).astype(np.float64))
        return np.exp(-(r_c * s_c - 1) * penalty_k)


@dataclass(frozen=True)
class Decision:
    """The chosen anchor of one step and the updated (not yet clamped) state.

    Attributes:
        index: flat anchor index ``a*625 + r*25 + c``.
        anchor, row, col: its anchor and RoW; the mask is taken at ``(row, col)``.
        score: raw foreground probability of the chosen anchor (float32 value), in [0, 1].
        penalty: its change penalty.
        margin: pscore of the best minus the second best anchor (small = near tie).
        center, size (np.ndarray[2] float64): updated state in frame pixels, unclamped.
        box_in_crop (np.ndarray[4] float32): the decoded box, crop pixels.

    See book/07_online_tracker.py.
    """

    index: int
    anchor: int
    row: int
    col: int
    score: float
    penalty: float
    margin: float
    center: np.ndarray
    size: np.ndarray
    box_in_crop: np.ndarray


@dataclass(frozen=True, eq=False)
class AnchorScores:
    """Every anchor's numbers in one step, flat order ``a*S*S + r*S + c`` (N = k*S*S).

    Attributes:
        fg (np.ndarray[N] float32): foreground probability (:func:`fg_probability`).
        boxes (np.ndarray[4, N] float32): decoded ``(cx, cy, w, h)``, crop pixels relative
            to the crop centre (:func:`decode_boxes`).
        penalty (np.ndarray[N] float64): scale/aspect change penalty (:func:`change_penalty`).
        pscore (np.ndarray[N] float64): ``(1 - wi) * penalty * fg + wi * window``, the value
            that is arg-maxed.

    See book/07_online_tracker.py.
    """

    fg: np.ndarray
    boxes: np.ndarray
    penalty: np.ndarray
    pscore: np.ndarray


def score_anchors(score_logits, delta, anchors: np.ndarray, window: np.ndarray, size,
                  scale_x: float, config) -> AnchorScores:
    """Released steps 4-5 for every anchor: probabilities, boxes, penalties, pscore.

    Args:
        score_logits, delta: the network's ``score`` and ``delta`` for one search crop
            (batch 1).
        anchors, window: from :func:`~siammask_edu.anchors.anchors_for`.
        size: previous ``(w, h)``, frame pixels.
        scale_x: ``127 / s_z`` (:func:`~siammask_edu.geometry.search_region`).
        config: a :class:`~siammask_edu.config.TrackerConfig` (``penalty_k``,
            ``window_influence``).

    Returns:
        :class:`AnchorScores`. Non-finite network outputs give non-finite entries (no
        warning); :func:`choose_row` guards the state against them.

    See book/07_online_tracker.py.
    """
    with np.errstate(all="ignore"):  # non-finite outputs are handled by the caller
        fg = fg_probability(score_logits)
        boxes = decode_boxes(delta, anchors)
        size = np.asarray(size, dtype=np.float64)
        penalty = change_penalty(boxes, size * scale_x, config.penalty_k)
        wi = config.window_influence
        pscore = (penalty * fg.astype(np.float64)) * (1 - wi) + window * wi
    return AnchorScores(fg, boxes, penalty, pscore)


def pick_anchor(scores: AnchorScores, center, size, scale_x: float, config) -> Decision:
    """Released step 6: the arg-max of ``pscore`` (first maximum) and the state update.

    ``center += box[:2] / scale_x`` (undamped); ``size = (1 - lr') size + lr' box[2:] /
    scale_x`` with ``lr' = penalty * fg * config.lr``.

    Args:
        scores: from :func:`score_anchors`.
        center, size: previous state, frame pixels.
        scale_x, config: as :func:`score_anchors` (``config.lr``, ``config.score_size``).

    Returns:
        :class:`Decision` (the update is not guarded against non-finite values).

    See book/07_online_tracker.py.
    """
    with np.errstate(all="ignore"):
        size = np.asarray(size, dtype=np.float64)
        center = np.asarray(center, dtype=np.float64)
        pscore, fg, boxes, penalty = scores.pscore, scores.fg, scores.boxes, scores.penalty
        best = int(np.argmax(pscore))
        top2 = np.partition(np.nan_to_num(pscore, nan=-np.inf), -2)[-2:]
        margin = float(top2[1] - top2[0])
        pred = boxes[:, best].astype(np.float64) / scale_x
        lr = penalty[best] * np.float64(fg[best]) * config.lr
        new_center = np.array([pred[0] + center[0], pred[1] + center[1]])
        new_size = np.array([size[0] * (1 - lr) + pred[2] * lr, size[1] * (1 - lr) + pred[3] * lr])
    a, r, c = unravel_anchor_index(best, len(fg) // config.score_size**2, config.score_size)
    return Decision(best, a, r, c, float(fg[best]), float(penalty[best]),
                    margin, new_center, new_size, boxes[:, best].copy())


def select_anchor(score_logits, delta, anchors: np.ndarray, window: np.ndarray, center, size,
                  scale_x: float, config) -> Decision:
    """Pick the best anchor and update the state (released steps 4-6):
    :func:`score_anchors` then :func:`pick_anchor`.

    ``pscore = (1 - wi) * penalty * score + wi * window``; ``best = argmax`` (first maximum);
    ``center += box[:2] / scale_x`` (undamped); ``size = (1 - lr') size + lr' box[2:] /
    scale_x`` with ``lr' = penalty * score * config.lr``.

    Args:
        score_logits, delta: the network's ``score`` and ``delta`` for one search crop.
        anchors, window: from :func:`~siammask_edu.anchors.anchors_for`.
        center, size: previous state, frame pixels.
        scale_x: ``127 / s_z`` (:func:`~siammask_edu.geometry.search_region`).
        config: a :class:`~siammask_edu.config.TrackerConfig`.

    See book/07_online_tracker.py.
    """
    scores = score_anchors(score_logits, delta, anchors, window, size, scale_x, config)
    return pick_anchor(scores, center, size, scale_x, config)


@dataclass(frozen=True, eq=False)
class RowChoice:
    """The first half of a step's post-processing (:func:`choose_row`): which RoW the mask
    is taken at, and the unclamped new state.

    Attributes:
        scores: every anchor's numbers (:class:`AnchorScores`).
        decision: the chosen anchor, RoW and updated state; when the update is not finite,
            the previous state with ``score`` 0.
        kept_previous: the update was not finite; the previous state was kept.
        prev_center, prev_size (np.ndarray[2] float64): the state the crop was cut at.
        scale_x: frame -> crop scale of the box deltas (``127 / s_z``).
        crop_side: ``S`` (int), side of the search crop in frame pixels.
        crop_box: ``(cx - S/2, cy - S/2, S, S)``, the square the mask is pasted back with.

    See book/07_online_tracker.py.
    """

    scores: AnchorScores
    decision: Decision
    kept_previous: bool
    prev_center: np.ndarray
    prev_size: np.ndarray
    scale_x: float
    crop_side: int
    crop_box: tuple


def choose_row(score_logits, delta, center, size, config, anchors: np.ndarray,
               window: np.ndarray) -> RowChoice:
    """Decode the network outputs of one search crop and choose the RoW (released
    ``siamese_track`` steps 1 and 4-6, with the non-finite guard).

    Args:
        score_logits (Tensor[1, 2k, S, S] float32), delta (Tensor[1, 4k, S, S] float32):
            network outputs for the crop cut at ``center`` with side ``S`` from
            :func:`~siammask_edu.geometry.search_region`.
        center, size: previous (clamped) state, frame pixels.
        config, anchors, window: tracker configuration and its constants
            (:func:`~siammask_edu.anchors.anchors_for`).

    Returns:
        :class:`RowChoice`. If the update is not finite (a network producing NaN/inf), the
        decision carries the previous state and score 0, ``kept_previous`` is set.

    See book/07_online_tracker.py.
    """
    center = np.asarray(center, dtype=np.float64)
    size = np.asarray(size, dtype=np.float64)
    scale_x, S = search_region(size, config.exemplar_size, config.instance_size,
                               config.context_amount)
    scores = score_anchors(score_logits, delta, anchors, window, size, scale_x, config)
    dec = pick_anchor(scores, center, size, scale_x, config)
    kept = not (np.all(np.isfinite(dec.center)) and np.all(np.isfinite(dec.size))
                and np.isfinite(dec.score))
    if kept:
        dec = Decision(dec.index, dec.anchor, dec.row, dec.col, 0.0, dec.penalty, dec.margin,
                       center.copy(), size.copy(), dec.box_in_crop)
    return RowChoice(scores, dec, bool(kept), center, size, float(scale_x), int(S),
                     (center[0] - S / 2, center[1] - S / 2, S, S))


def paste_mask(mask_prob: np.ndarray, crop_box, row: int, col: int, frame_hw, config
               ) -> np.ndarray:
    """Project a RoW's mask back into the frame (released ``crop_back``).

    The RoW at ``(row, col)`` sees the 127x127 crop window whose top-left corner is
    ``crop_box[:2] + ((col, row) - base_size/2) * stride * s`` with ``s = S / 255``. The mask
    is warped with ``cv2.warpAffine`` (bilinear, constant border ``-1``) by the released
    affine map, whose scale has the odd factor ``(W - 1) / W`` (and ``(H - 1) / H``).

    Args:
        mask_prob (np.ndarray[m, m] float32): probabilities (m = 127 refined, 63 base).
        crop_box: ``(cx - S/2, cy - S/2, S, S)`` of the search crop, frame pixels.
        row, col: the chosen RoW.
        frame_hw: ``(H, W)``.
        config: a :class:`~siammask_edu.config.TrackerConfig`.

    Returns:
        np.ndarray[H, W] float32: probabilities inside the projected window, -1 outside.

    See book/07_online_tracker.py.
    """
    H, W = int(frame_hw[0]), int(frame_hw[1])
    out_size = mask_prob.shape[0]
    s = crop_box[2] / config.instance_size
    sub_x = crop_box[0] + (col - config.base_size / 2) * config.total_stride * s
    sub_y = crop_box[1] + (row - config.base_size / 2) * config.total_stride * s
    sub_w = s * config.exemplar_size
    s2 = out_size / sub_w
    back = [-sub_x * s2, -sub_y * s2, W * s2, H * s2]
    a = (W - 1) / back[2]
    b = (H - 1) / back[3]
    mapping = np.array([[a, 0, -a * back[0]], [0, b, -b * back[1]]], dtype=np.float64)
    return cv2.warpAffine(np.ascontiguousarray(mask_prob, dtype=np.float32), mapping, (W, H),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)


def paste_window(out_size: int, crop_box, row: int, col: int, frame_hw, config,
                 margin: int = 3) -> tuple[int, int, int, int]:
    """Frame rectangle ``(x0, y0, x1, y1)`` (half-open) outside which :func:`paste_mask`
    writes exactly ``-1``: the projected RoW window plus ``margin`` pixels (bilinear rim and
    a zero border for contour tracing), clipped to the frame.

    Args:
        out_size: side of the RoW mask (127 or 63).
        crop_box, row, col, frame_hw, config: as :func:`paste_mask`.
        margin: extra pixels on each side (>= 2 keeps contour tracing identical).

    Returns:
        ``(x0, y0, x1, y1)`` ints, possibly empty (``x1 <= x0``) when the window is off-frame.

    See book/11_speed.py.
    """
    H, W = int(frame_hw[0]), int(frame_hw[1])
    s = crop_box[2] / config.instance_size
    sub_x = crop_box[0] + (col - config.base_size / 2) * config.total_stride * s
    sub_y = crop_box[1] + (row - config.base_size / 2) * config.total_stride * s
    sub_w = s * config.exemplar_size
    # paste_mask's map: x = (W - 1) / W * (sub_x + u * sub_w / out_size), likewise y
    ax, ay = (W - 1) / W, (H - 1) / H
    step = sub_w / out_size
    lo_x, hi_x = ax * (sub_x - step), ax * (sub_x + (out_size + 1) * step)
    lo_y, hi_y = ay * (sub_y - step), ay * (sub_y + (out_size + 1) * step)
    if not all(np.isfinite(v) for v in (lo_x, hi_x, lo_y, hi_y)):
        return 0, 0, W, H
    x0 = int(max(0, min(W, np.floor(lo_x) - margin)))
    y0 = int(max(0, min(H, np.floor(lo_y) - margin)))
    x1 = int(max(0, min(W, np.ceil(hi_x) + margin + 1)))
    y1 = int(max(0, min(H, np.ceil(hi_y) + margin + 1)))
    return x0, y0, x1, y1


def _mask_and_polygon_in_window(mask_prob: np.ndarray, win, config):
    """``mask_prob > seg_thr`` and the fitted box computed on the window only (contours
    traced with the window's offset, so the points are frame pixels; ``win`` keeps a
    background rim, see :func:`paste_window`)."""
    x0, y0, x1, y1 = win
    mask = np.zeros(mask_prob.shape, dtype=bool)
    if x1 <= x0 or y1 <= y0:
        return mask, None
    sub = mask_prob[y0:y1, x0:x1] > float(config.seg_thr)
    mask[y0:y1, x0:x1] = sub
    points = largest_contour(sub, float(config.min_polygon_area), offset=(x0, y0))
    if points is None:
        return mask, None
    return mask, box_from_contour(points, config.box_strategy)


def box_polygon(center, size) -> np.ndarray:
    """Axis-aligned rectangle of a ``(cx, cy)``, ``(w, h)`` state as 4 corners TL, TR, BR, BL
    (released fallback polygon; float64).

    See book/07_online_tracker.py.
    """
    x, y, w, h = center[0] - size[0] / 2, center[1] - size[1] / 2, size[0], size[1]
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def clamp_state(center, size, frame_hw, min_size: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Released clamps: centre to ``[0, W] x [0, H]``, size to ``[min_size, W] x
    [min_size, H]`` (applied after the mask step).

    Returns:
        ``(center, size)`` as new float64 arrays.

    See book/07_online_tracker.py.
    """
    H, W = frame_hw
    c = np.array([max(0, min(W, center[0])), max(0, min(H, center[1]))], dtype=np.float64)
    s = np.array([max(min_size, min(W, size[0])), max(min_size, min(H, size[1]))],
                 dtype=np.float64)
    return c, s


@dataclass(frozen=True)
class StepOutput:
    """Everything one step computes after the network (:func:`finish_step`).

    Attributes:
        decision: the chosen anchor and unclamped update.
        center, size (np.ndarray[2] float64): the clamped state for the next frame.
        mask_prob (np.ndarray[H, W] float32 | None): released ``mask_in_img`` (-1 outside).
        mask (np.ndarray[H, W] bool | None): ``mask_prob > seg_thr`` (strict).
        polygon (np.ndarray[4, 2] float32): fitted box, or the unclamped axis-aligned box.
        polygon_source: ``"mask"`` or ``"box"``.
        kept_previous: the decoded state was not finite; the previous state was kept.
        lost: ``decision.score < config.lost_score`` (the only place ``lost`` is decided;
            a kept-previous step has score 0 and is lost for any ``lost_score > 0``).

    See book/07_online_tracker.py.
    """

    decision: Decision
    center: np.ndarray
    size: np.ndarray
    mask_prob: np.ndarray | None
    mask: np.ndarray | None
    polygon: np.ndarray
    polygon_source: str
    kept_previous: bool
    lost: bool = False


def row_probability(mask_logits) -> np.ndarray:
    """Sigmoid of one RoW's mask logits as a square map.

    Args:
        mask_logits (Tensor | np.ndarray): ``m * m`` logits in any shape (``(1, 1, m, m)``
            from refinement / the mask head, ``(m, m)``, ...), row-major; m = 127 (refined)
            or 63 (mask head).

    Returns:
        np.ndarray[m, m] float32 probabilities.

    See book/07_online_tracker.py.
    """
    logits = torch.as_tensor(mask_logits).float()
    m = round(logits.numel() ** 0.5)
    return logits.sigmoid().reshape(m, m).cpu().numpy()


def finish_step(choice: RowChoice, mask_logits, frame_hw, config,
                window_only: bool = True) -> StepOutput:
    """The second half of a step's post-processing: paste the chosen RoW's mask back into
    the frame, threshold it, fit the box (:func:`~siammask_edu.boxes.box_from_contour`),
    fall back to the state's box, clamp the state (released ``siamese_track`` steps 7-8).

    Args:
        choice: from :func:`choose_row`.
        mask_logits (Tensor | np.ndarray | None): the ``m x m`` logits of the RoW at
            ``choice.decision.(row, col)`` (refinement: m = 127; mask head: m = 63), from
            the network; ``None`` skips the mask (the polygon is then the box).
        frame_hw: ``(H, W)`` of the frame.
        config: a :class:`~siammask_edu.config.TrackerConfig` (``seg_thr``,
            ``box_strategy``, ``min_polygon_area``, ``min_size``, ``lost_score``).
        window_only: threshold the mask and trace its contours only on the projected RoW
            window (:func:`paste_window`) instead of the whole frame; the outputs are
            identical (outside the window ``mask_prob`` is exactly -1). The paste itself
            stays full-frame: OpenCV's ``warpAffine`` is not bit-identical under a shifted
            or smaller destination.

    Returns:
        :class:`StepOutput`.

    Raises:
        ValueError: an unknown ``config.box_strategy`` (when a mask blob is found).

    See book/07_online_tracker.py.
    """
    dec, crop_box = choice.decision, choice.crop_box
    mask_prob = mask = polygon = None
    if mask_logits is not None:
        prob = row_probability(mask_logits)
        m = prob.shape[0]
        mask_prob = paste_mask(prob, crop_box, dec.row, dec.col, frame_hw, config)
        if window_only and float(config.seg_thr) >= -1:
            mask, polygon = _mask_and_polygon_in_window(
                mask_prob, paste_window(m, crop_box, dec.row, dec.col, frame_hw, config),
                config)
        else:
            mask = mask_prob > float(config.seg_thr)
            polygon = fit_box(mask, config.box_strategy, float(config.min_polygon_area))
    source = "mask" if polygon is not None else "box"
    if polygon is None:
        polygon = box_polygon(dec.center, dec.size).astype(np.float32)
    new_center, new_size = clamp_state(dec.center, dec.size, frame_hw, config.min_size)
    if not np.all(np.isfinite(polygon)):  # a finite but astronomically large box
        polygon = box_polygon(new_center, new_size).astype(np.float32)
    return StepOutput(dec, new_center, new_size, mask_prob, mask, np.asarray(polygon, np.float32),
                      source, choice.kept_previous, bool(dec.score < config.lost_score))


def postprocess_step(score_logits, delta, mask_logits_at: Callable[[int, int], Any] | None,
                     center, size, frame_hw, config, anchors: np.ndarray,
                     window: np.ndarray, window_only: bool = True) -> StepOutput:
    """Released ``siamese_track`` after the forward pass, for one frame, given the chosen
    RoW's mask as a callable: :func:`choose_row`, ``mask_logits_at(row, col)``,
    :func:`finish_step`.

    The tracker does not use this form (its step, :class:`~siammask_edu.step.TrackStep`,
    calls the network for the chosen RoW itself between the two halves); it serves replays
    of recorded network outputs, where the RoW's logits are looked up, not computed.

    Args:
        score_logits, delta: network outputs for the search crop cut at ``center`` with
            side ``S`` from :func:`~siammask_edu.geometry.search_region`.
        mask_logits_at: ``(row, col) -> logits (m, m)`` (tensor or array) of the chosen RoW,
            called once, or ``None`` to skip the mask (the polygon is then the box).
        center, size: previous (clamped) state, frame pixels.
        frame_hw: ``(H, W)`` of the frame.
        config, anchors, window: tracker configuration and its constants.
        window_only: as :func:`finish_step`.

    Returns:
        :class:`StepOutput`. If the update is not finite (a network producing NaN/inf), the
        previous state is kept, ``kept_previous`` is set and the score reported is 0.

    See book/07_online_tracker.py.
    """
    choice = choose_row(score_logits, delta, center, size, config, anchors, window)
    d = choice.decision
    logits = None if mask_logits_at is None else mask_logits_at(d.row, d.col)
    return finish_step(choice, logits, frame_hw, config, window_only)


__all__ = [
    "AnchorScores",
    "Decision",
    "RowChoice",
    "StepOutput",
    "box_polygon",
    "change_penalty",
    "choose_row",
    "clamp_state",
    "decode_boxes",
    "fg_probability",
    "finish_step",
    "paste_mask",
    "paste_window",
    "pick_anchor",
    "postprocess_step",
    "row_probability",
    "score_anchors",
    "select_anchor",
]
