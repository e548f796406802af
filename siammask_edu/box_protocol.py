"""Table 1 of the paper: how much does the box *representation* matter? (paper §4.1)

Three **oracles** see the per-frame ground truth (a rotated box, as in VOT) and give the best
box that a representation can produce; their IoU with the ground truth is an upper bound
for trackers that output that kind of box:

* :func:`oracle_fixed_aspect` — axis-aligned, the ground truth's area and centre, the aspect
  ratio of the first frame (SiamFC's representation);
* :func:`oracle_minmax` — the axis-aligned min/max rectangle of the rotated ground truth
  (SiamRPN's representation: any aspect ratio, no rotation);
* :func:`oracle_mbr` — the rotated minimum-area bounding rectangle of the ground truth
  (``cv2.minAreaRect``; SiamMask's MBR representation).

:func:`box_metrics` summarises per-frame IoUs as Table 1 does: mean IoU and "mAP@t".

**Reading of "mAP@t".** Paper §4.1 names the measures "mean intersection over union (IOU)
and Average Precision (AP)@{0.5, 0.7} IOU", and Table 1's columns "mAP@0.5 IOU" and
"mAP@0.7 IOU". A box per frame with no confidence ranking leaves no precision-recall curve
to average, so we read AP@t as the fraction of frames whose IoU is at least ``t`` (a
frame is a true positive if IoU >= t); the "m" is the mean over frames pooled across
sequences. This reading is ours: the paper gives no formula.

**Which IoU.** :func:`polygon_iou` is the *analytic* IoU of the two polygons (shapely,
float64): the oracle boxes and the ground truth are exact geometric objects, and the
analytic value is independent of the pixel grid, so an MBR of an exact rectangle gives
exactly 1 (up to float32 rounding in OpenCV). VOT's own overlap
(:func:`siammask_edu.metrics.vot.region_overlap`) rasterises both polygons on the integer
grid after rounding the corners; it is available with ``iou="vot"`` for comparison and
differs by a few 0.1 % on objects of ~100 px.

The paper's VOT-2016 values (60 sequences) are in :data:`PAPER_TABLE1`. Note that on the
VOT ground truth, which consists of (near-)exact rotated rectangles, the MBR oracle is
~100 % by construction; the paper's 84.07 % must come from a protocol the paper does not
spell out (its §4.1 evaluates "randomly cropped search patches").

:func:`table1` runs the **predicted-mask protocol** of §4.1 (random search crops, shift
±16 px and scale ``2^(1±0.25)``, seeded): the model's mask at the RoW the tracker chooses,
pasted back into the frame, boxed by Min-max / MBR / Opt (:func:`~siammask_edu.boxes.fit_box`),
with the oracles on the same frames; see :func:`table1_frames` for the exact reading.

All coordinates are frame pixels, x right, y down. A polygon is 8 numbers
``x1, y1, ..., x4, y4`` (a VOT ``groundtruth.txt`` line) or an array ``(4, 2)``.

See book/06_mask_to_box.py and book/10_measuring.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from .boxes import rotated_iou

#: Paper Table 1 (VOT-2016): ``{row: (mIoU %, mAP@0.5 IoU %, mAP@0.7 IoU %)}``.
PAPER_TABLE1: dict[str, tuple[float, float, float]] = {
    "Fixed a.r. Oracle": (73.43, 90.15, 62.52),
    "Min-max Oracle": (77.70, 88.84, 65.16),
    "MBR Oracle": (84.07, 97.77, 80.68),
    "SiamFC": (50.48, 56.42, 9.28),
    "SiamRPN": (60.02, 76.20, 32.47),
    "SiamMask-Min-max": (65.05, 82.99, 43.09),
    "SiamMask-MBR": (67.15, 85.42, 50.86),
    "SiamMask-Opt": (71.68, 90.77, 60.47),
}

#: The oracle rows: name -> function of ``(gt_polygon, first_polygon)``.
ORACLES = ("Fixed a.r. Oracle", "Min-max Oracle", "MBR Oracle")

_MIN_AREA = 1e-9  # px^2: below this a polygon is degenerate


def _polygon(polygon, name: str = "polygon") -> np.ndarray:
    """Validate a 4-corner polygon; returns ``(4, 2)`` float64."""
    try:
        p = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be 8 numbers or a (4, 2) array, got {polygon!r}") from exc
    if p.size != 8:
        raise ValueError(f"{name} must be 8 numbers or a (4, 2) array, got shape {p.shape}")
    p = p.reshape(4, 2)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} has non-finite values: {p.ravel().tolist()}")
    if polygon_area(p) <= _MIN_AREA:
        raise ValueError(f"{name} is degenerate (zero area): {p.ravel().tolist()}")
    return p


def polygon_area(polygon) -> float:
    """Area of a simple polygon by the shoelace formula, px^2 (unsigned).

    Args:
        polygon (np.ndarray[N, 2] | 2N numbers): corners in order (either direction).

    See book/06_mask_to_box.py.
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _axis_aligned(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def oracle_fixed_aspect(gt_polygon, first_polygon) -> np.ndarray:
    """The fixed aspect-ratio oracle (Table 1, row 1): SiamFC's best possible box.

    Axis-aligned, centred on the mean of the ground truth's corners, with the ground
    truth's area ``A`` (shoelace) and the aspect ratio ``r = w0 / h0`` of the **first
    frame**, where ``(w0, h0)`` is the min/max extent of ``first_polygon`` (the aspect of
    the axis-aligned box a tracker is initialised with, released ``get_axis_aligned_bbox``):
    ``w = sqrt(A r)``, ``h = sqrt(A / r)``. On a frame equal to the first one and an
    axis-aligned ground truth it returns the ground truth (IoU 1).

    Args:
        gt_polygon: this frame's ground truth, 8 numbers or ``(4, 2)``, frame pixels.
        first_polygon: the first frame's ground truth, same format.

    Returns:
        np.ndarray[4, 2] float64: corners TL, TR, BR, BL.

    Raises:
        ValueError: for a malformed, non-finite or zero-area polygon.

    See book/06_mask_to_box.py.
    """
    p, p0 = _polygon(gt_polygon, "gt_polygon"), _polygon(first_polygon, "first_polygon")
    w0, h0 = np.ptp(p0[:, 0]), np.ptp(p0[:, 1])
    if not (w0 > 0 and h0 > 0):  # a zero-area extent cannot hold a non-zero area polygon
        raise ValueError(f"first_polygon has a degenerate extent: {p0.ravel().tolist()}")
    r = w0 / h0
    area = polygon_area(p)
    cx, cy = p.mean(0)
    return _axis_aligned(cx, cy, math.sqrt(area * r), math.sqrt(area / r))


def oracle_minmax(gt_polygon) -> np.ndarray:
    """The Min-max oracle (Table 1, row 2): the axis-aligned rectangle enclosing the
    rotated ground truth (min/max of its corners).

    Returns:
        np.ndarray[4, 2] float64: corners TL, TR, BR, BL.

    Raises:
        ValueError: for a malformed, non-finite or zero-area polygon.

    See book/06_mask_to_box.py.
    """
    p = _polygon(gt_polygon, "gt_polygon")
    (x1, y1), (x2, y2) = p.min(0), p.max(0)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def oracle_mbr(gt_polygon) -> np.ndarray:
    """The MBR oracle (Table 1, row 3): the rotated minimum-area rectangle of the ground
    truth, ``cv2.boxPoints(cv2.minAreaRect(...))`` as the tracker fits its masks.

    For a ground truth that is an exact rectangle this is the ground truth itself (OpenCV
    works in float32, so corners agree to ~1e-4 px).

    Returns:
        np.ndarray[4, 2] float64: corners in OpenCV's ``boxPoints`` order.

    Raises:
        ValueError: for a malformed, non-finite or zero-area polygon.

    See book/06_mask_to_box.py.
    """
    p = _polygon(gt_polygon, "gt_polygon")
    return cv2.boxPoints(cv2.minAreaRect(p.astype(np.float32))).astype(np.float64)


def polygon_iou(a, b, iou: str = "analytic", bounds: tuple[float, float] | None = None
                ) -> float:
    """IoU of two polygons (8 numbers or ``(4, 2)`` each).

    Args:
        a, b: the polygons, frame pixels.
        iou: ``"analytic"`` (shapely, exact areas; the default of this module) or ``"vot"``
            (VOT's rasterised overlap, :func:`siammask_edu.metrics.vot.region_overlap`).
        bounds: ``(W, H)`` to clip both polygons to the image (``"vot"`` only; VOT accuracy
            uses the image size).

    Returns:
        float in [0, 1].

    Raises:
        ValueError: for an unknown ``iou`` or a malformed polygon.

    See book/06_mask_to_box.py.
    """
    pa, pb = _polygon(a, "a"), _polygon(b, "b")
    if iou == "analytic":
        if bounds is not None:
            raise ValueError("bounds apply to iou='vot' only")
        return rotated_iou(pa, pb)
    if iou == "vot":
        from .metrics.vot import region_overlap

        return float(region_overlap(pa.ravel(), pb.ravel(), bounds))
    raise ValueError(f"iou must be 'analytic' or 'vot', got {iou!r}")


def oracle_ious(gt_polygons: Sequence, oracle: str, iou: str = "analytic",
                bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Per-frame IoU of one oracle with the ground truth of one sequence.

    Args:
        gt_polygons: the sequence's ground truth, one polygon per frame (``(N, 8)`` or
            ``(N, 4, 2)``); frame 0 fixes the aspect ratio of the fixed-aspect oracle.
        oracle: one of :data:`ORACLES` (or ``"fixed_aspect"``, ``"minmax"``, ``"mbr"``).
        iou, bounds: see :func:`polygon_iou`.

    Returns:
        np.ndarray[N] float64.

    Raises:
        ValueError: for an unknown oracle, an empty sequence or a malformed polygon.

    See book/06_mask_to_box.py.
    """
    names = {"fixed_aspect": ORACLES[0], "minmax": ORACLES[1], "mbr": ORACLES[2]}
    oracle = names.get(oracle, oracle)
    if oracle not in ORACLES:
        raise ValueError(f"unknown oracle {oracle!r}; expected one of {ORACLES}")
    gts = [np.asarray(g, np.float64).reshape(-1) for g in gt_polygons]
    if not gts:
        raise ValueError("gt_polygons is empty")
    first = gts[0]
    out = []
    for g in gts:
        if oracle == ORACLES[0]:
            box = oracle_fixed_aspect(g, first)
        elif oracle == ORACLES[1]:
            box = oracle_minmax(g)
        else:
            box = oracle_mbr(g)
        out.append(polygon_iou(box, g, iou, bounds))
    return np.asarray(out, dtype=np.float64)


def box_metrics(ious: Iterable[float], thresholds: Sequence[float] = (0.5, 0.7)
                ) -> dict[str, float]:
    """Table 1's measures of a set of per-frame IoUs: mean IoU and "mAP@t".

    ``mAP@t`` is the fraction of frames with ``IoU >= t`` (see the module docstring for
    this reading of the paper's "Average Precision @ t IOU").

    Args:
        ious: per-frame IoUs in [0, 1] (pool several sequences by concatenating them).
        thresholds: IoU thresholds in (0, 1].

    Returns:
        ``{"mIoU": m, "mAP@0.5": a, "mAP@0.7": b}``: fractions in [0, 1] (multiply by 100
        for the paper's percentages); keys are ``f"mAP@{t:g}"``.

    Raises:
        ValueError: for no IoUs, a non-finite IoU or one outside [0, 1], or a threshold
            outside (0, 1].

    See book/06_mask_to_box.py.
    """
    v = np.asarray(list(ious) if not isinstance(ious, np.ndarray) else ious,
                   dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("box_metrics needs at least one IoU")
    if not np.all(np.isfinite(v)):
        raise ValueError("IoUs must be finite (drop frames without ground truth first)")
    if v.min() < 0 or v.max() > 1 + 1e-9:
        raise ValueError(f"IoUs must lie in [0, 1], got range [{v.min()}, {v.max()}]")
    out = {"mIoU": float(v.mean())}
    for t in thresholds:
        t = float(t)
        if not 0 < t <= 1:
            raise ValueError(f"thresholds must lie in (0, 1], got {t}")
        out[f"mAP@{t:g}"] = float(np.mean(v >= t))
    return out


def oracle_table(sequences: Sequence[Sequence], iou: str = "analytic",
                 thresholds: Sequence[float] = (0.5, 0.7)) -> dict[str, dict[str, float]]:
    """The three oracle rows of Table 1 on a set of sequences (frames pooled).

    Args:
        sequences: one ground-truth list per sequence (see :func:`oracle_ious`).
        iou: ``"analytic"`` or ``"vot"`` (unbounded).
        thresholds: see :func:`box_metrics`.

    Returns:
        ``{oracle name: box_metrics(...)}`` for the names of :data:`ORACLES`.

    See book/06_mask_to_box.py.
    """
    if not sequences:
        raise ValueError("no sequences")
    return {name: box_metrics(np.concatenate([oracle_ious(s, name, iou) for s in sequences]),
                              thresholds)
            for name in ORACLES}


# -- the predicted-mask protocol of §4.1 ---------------------------------------------------

#: SiamMask rows of Table 1: row name -> :func:`~siammask_edu.boxes.fit_box` strategy.
SIAMMASK_ROWS = {"SiamMask-Min-max": "minmax", "SiamMask-MBR": "mbr", "SiamMask-Opt": "opt"}


def _vot_source(seq, root=None):
    """``(name, frame paths or arrays, ground-truth polygons)`` of one sequence argument.

    Frames pair with the ground truth by identity: a folder's image number i with line i
    of ``groundtruth.txt`` (:func:`~siammask_edu.metrics.inputs.pair_by_number`); given
    lists must have one frame per ground-truth region.

    Raises:
        ValueError: frames missing, extra or unnumbered (all named), or lists of
            different lengths.
    """
    from .io import list_images
    from .metrics.inputs import pair_by_number
    from .metrics.vot import read_trajectory
    from .paths import data_root

    if isinstance(seq, (tuple, list)) and len(seq) == 3:
        name, frames, gt = seq
        frames, gt = list(frames), [np.asarray(g, np.float64).ravel() for g in gt]
        if len(frames) != len(gt):
            raise ValueError(f"sequence {name}: {len(frames)} frames for {len(gt)} "
                             "ground-truth regions (frame i pairs with region i)")
        return str(name), frames, gt
    folder = Path(seq)
    if not (folder / "groundtruth.txt").is_file():
        folder = data_root(root) / "vot" / str(seq)
    if not (folder / "groundtruth.txt").is_file():
        raise FileNotFoundError(f"no VOT sequence {seq!r} (looked for {folder}/groundtruth.txt)")
    color = folder / "color" if (folder / "color").is_dir() else folder
    gt = read_trajectory(folder / "groundtruth.txt")
    shown = f"{folder.name}/{'color/' if color != folder else ''}"
    return folder.name, pair_by_number(list_images(color), len(gt), shown), gt


def _load_frame(frame) -> np.ndarray:
    from .io import read_image

    return frame if isinstance(frame, np.ndarray) else read_image(frame)


def table1_frames(model, sequences: Sequence, frames_per_sequence: int | None = None,
                  seed: int = 0, shift: float = 16.0, scale_exp: float = 0.25,
                  config="vot", device="cpu", strategies: Sequence[str] = ("minmax", "mbr",
                                                                            "opt"),
                  iou: str = "analytic", root=None) -> list[dict]:
    """Per-frame records of the Table-1 protocol with the model's **predicted** masks.

    For every sequence the template is taken from frame 0 (released ``init_polygon`` of the
    ground truth). For every evaluated frame ``f >= 1`` a random search crop is cut around
    the ground truth with a seeded :func:`numpy.random.default_rng`:

    * **scale**: the target size (released area-preserving ``w, h`` of the ground truth)
      is multiplied by ``2**u``, ``u ~ U(-scale_exp, scale_exp)``; since the crop side is
      ``S ~= 2 s_z`` (``255 / 127`` of the context size), the crop is ``2**(1 + u) s_z``:
      the paper's ``2^(1 ± 0.25)``;
    * **shift**: the crop centre is the ground-truth centre plus ``(dx, dy) ~
      U(-shift, shift)`` pixels **of the 255 x 255 search crop** (frame pixels
      ``dx * S / 255``).

    The tracker state is set to that crop (:meth:`~siammask_edu.tracker.Tracker.set_target`)
    and :meth:`~siammask_edu.tracker.Tracker.track` runs once: the released scoring picks the
    RoW (penalty and cosine window relative to the crop), the mask of that RoW is pasted back
    into the frame, and each strategy fits a box to it
    (:func:`~siammask_edu.boxes.fit_box` with the config's ``min_polygon_area``). Where no
    blob is large enough the tracker's own axis-aligned box stands in (``fallback``). The
    three oracles are computed on the same frames.

    Args:
        model: a three-branch SiamMask (e.g. ``load_released_checkpoint(...)``).
        sequences: VOT sequences: names under ``data_root()/"vot"``, folders holding
            ``groundtruth.txt`` (and ``color/``), or ``(name, frames, groundtruth)`` tuples
            (frames RGB ``uint8`` arrays or image paths; ground truth 8-number polygons).
        frames_per_sequence: evaluate this many frames per sequence, drawn without
            replacement from frames 1..N-1 (None: all of them).
        seed: seed of the frame draw and the crop jitter.
        shift: maximal shift, search-crop pixels (16).
        scale_exp: maximal ``|u|`` of the scale ``2**(1 + u)`` (0.25).
        config: tracker preset or :class:`~siammask_edu.config.TrackerConfig` (``"vot"``).
        device: torch device.
        strategies: box strategies to fit (subset of ``minmax``, ``mbr``, ``opt``).
        iou: ``"analytic"`` or ``"vot"`` (see :func:`polygon_iou`).
        root: data root for sequence names.

    Returns:
        One dict per frame: ``sequence``, ``frame``, ``du`` (scale exponent), ``dx``,
        ``dy`` (crop pixels), ``row_col``, ``score``, ``mask_pixels``, ``fallback``
        (no blob: the tracker's box was used), the ground truth ``gt`` (8 numbers) and
        ``iou`` ``{row name: IoU}`` for the oracles and the SiamMask rows.

    Raises:
        ValueError: for no sequences, a bad strategy, a negative shift or scale, a
            sequence shorter than 2 frames, or frames that do not pair with the ground
            truth (missing, extra or unnumbered images, all named; lists of different
            lengths).
        FileNotFoundError: for a missing sequence.

    See book/10_measuring.py.
    """
    from .boxes import STRATEGIES, fit_box
    from .geometry import search_region, vot_polygon_to_cxcywh
    from .tracker import Tracker

    if not sequences:
        raise ValueError("no sequences")
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies:
        raise ValueError(f"strategies must be a non-empty subset of {STRATEGIES}, got {bad}")
    if shift < 0 or scale_exp < 0:
        raise ValueError(f"shift and scale_exp must be >= 0, got {shift}, {scale_exp}")
    if frames_per_sequence is not None and frames_per_sequence < 1:
        raise ValueError(f"frames_per_sequence must be >= 1, got {frames_per_sequence}")
    rows_of = {v: k for k, v in SIAMMASK_ROWS.items()}
    rng = np.random.default_rng(seed)
    tracker = Tracker(model, config, device)
    cfg = tracker.config
    out = []
    for seq in sequences:
        name, frames, gts = _vot_source(seq, root)
        n = len(gts)
        if n < 2:
            raise ValueError(f"sequence {name} has {n} frame(s); Table 1 needs at least 2")
        idx = np.arange(1, n)
        if frames_per_sequence is not None and frames_per_sequence < len(idx):
            idx = np.sort(rng.choice(idx, frames_per_sequence, replace=False))
        tracker.init_polygon(_load_frame(frames[0]), gts[0])
        for f in idx.tolist():
            gt = gts[f]
            frame = _load_frame(frames[f])
            cx, cy, w, h = vot_polygon_to_cxcywh(gt)
            du = float(rng.uniform(-scale_exp, scale_exp))
            dx, dy = (float(v) for v in rng.uniform(-shift, shift, 2))
            size = np.array([w, h]) * 2.0 ** du
            _, S = search_region(size, cfg.exemplar_size, cfg.instance_size,
                                 cfg.context_amount)
            k = S / cfg.instance_size  # crop pixel -> frame pixels
            tracker.set_target((cx + dx * k, cy + dy * k), size)
            res = tracker.track(frame)
            ious = {o: polygon_iou(b, gt, iou) for o, b in (
                (ORACLES[0], oracle_fixed_aspect(gt, gts[0])),
                (ORACLES[1], oracle_minmax(gt)), (ORACLES[2], oracle_mbr(gt)))}
            fallback = False
            for strat in strategies:
                box = fit_box(res.mask, strat, float(cfg.min_polygon_area))
                if box is None:
                    fallback = True
                    box = res.polygon
                try:
                    ious[rows_of[strat]] = polygon_iou(box, gt, iou)
                except ValueError:  # a degenerate (zero-area) box overlaps nothing
                    ious[rows_of[strat]] = 0.0
            out.append({"sequence": name, "frame": int(f), "du": du, "dx": dx, "dy": dy,
                        "row_col": res.row_col, "score": res.score,
                        "mask_pixels": int(np.count_nonzero(res.mask)),
                        "fallback": fallback, "gt": np.asarray(gt, np.float64).tolist(),
                        "iou": ious})
    return out


def table1(model, sequences: Sequence, frames_per_sequence: int | None = None,
           seed: int = 0, thresholds: Sequence[float] = (0.5, 0.7), **kwargs) -> list[dict]:
    """Table 1 of the paper on VOT sequences: the three oracles and SiamMask's boxes from
    its predicted masks (Min-max, MBR, Opt), frames pooled over sequences.

    Runs :func:`table1_frames` (random search crops, seeded) and summarises each row with
    :func:`box_metrics`.

    Args:
        model: a three-branch SiamMask.
        sequences, frames_per_sequence, seed: see :func:`table1_frames`.
        thresholds: IoU thresholds of "mAP@t".
        **kwargs: passed to :func:`table1_frames` (``shift``, ``scale_exp``, ``config``,
            ``device``, ``strategies``, ``iou``, ``root``).

    Returns:
        One dict per row, oracles first then SiamMask-Min-max / -MBR / -Opt (those
        computed): ``row``, ``mIoU``, ``mAP@0.5``, ``mAP@0.7`` (fractions), ``n_frames``,
        ``n_fallback`` (frames without a mask blob) and ``paper`` (the paper's VOT-2016
        ``(mIoU, mAP@0.5, mAP@0.7)`` in %).

    See book/10_measuring.py.
    """
    frames = table1_frames(model, sequences, frames_per_sequence, seed, **kwargs)
    names = [r for r in (*ORACLES, *SIAMMASK_ROWS) if r in frames[0]["iou"]]
    n_fb = sum(fr["fallback"] for fr in frames)
    return [{"row": r, **box_metrics([fr["iou"][r] for fr in frames], thresholds),
             "n_frames": len(frames), "n_fallback": n_fb if r in SIAMMASK_ROWS else 0,
             "paper": PAPER_TABLE1[r]} for r in names]


__all__ = [
    "ORACLES",
    "PAPER_TABLE1",
    "SIAMMASK_ROWS",
    "box_metrics",
    "oracle_fixed_aspect",
    "oracle_ious",
    "oracle_mbr",
    "oracle_minmax",
    "oracle_table",
    "polygon_area",
    "polygon_iou",
    "table1",
    "table1_frames",
]
