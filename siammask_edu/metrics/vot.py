"""VOT accuracy, robustness and EAO, and the supervised reset protocol, as the official code.

Sources: the VOT ``region.c`` overlap (identical in foolwood/SiamMask ``utils/pysot`` and
STVIR/pysot ``toolkit/utils``), pysot's ``calculate_accuracy`` / ``calculate_failures`` /
``calculate_expected_overlap``, ``AccuracyRobustnessBenchmark`` and ``EAOBenchmark``, and
foolwood ``tools/test.py::track_vot`` for the protocol. A *region* is a 1-D float64 array:
length 1 for a code (1 = (re-)init, 2 = failure, 0 = skipped), 4 for a rectangle ``x, y, w, h``
and 8 (or 2k) for a polygon ``x1, y1, ..., xk, yk``, all in frame pixels.

See book/10_measuring.py.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..boxes import rotated_iou
from ..geometry import vot_polygon_to_cxcywh
from ..io import format_vot_region, write_vot_polygons

#: EAO intervals (1-based sequence lengths, inclusive) of the toolkits.
EAO_INTERVALS = {
    "VOT2018": (100, 356),
    "VOT2017": (100, 356),
    "VOT2016": (100, 356),  # foolwood
    "VOT2016-stvir": (108, 371),
    "VOT2019": (46, 291),
}


def parse_region(line: str | Sequence[float]) -> np.ndarray:
    """Parse one result/groundtruth line (``"1"``, ``"x,y,w,h"``, ``"x1,y1,...,x4,y4"``).

    Returns:
        np.ndarray (1,), (4,) or (2k,) float64.

    Raises:
        ValueError: for an empty line, an odd polygon or a length of 2.

    See book/10_measuring.py.
    """
    vals = [float(v) for v in line.strip().split(",")] if isinstance(line, str) else list(line)
    n = len(vals)
    if n == 0 or n == 2 or (n > 4 and n % 2) or n == 3:
        raise ValueError(f"not a VOT region (1, 4 or 2k>=6 numbers): {line!r}")
    return np.asarray(vals, dtype=np.float64)


def read_trajectory(path: str | os.PathLike) -> list[np.ndarray]:
    """Read a VOT result or ``groundtruth.txt`` file, one :func:`parse_region` per line.

    See book/10_measuring.py.
    """
    with open(path) as fh:
        return [parse_region(ln) for ln in fh if ln.strip()]


def format_region(region: np.ndarray | int) -> str:
    """One VOT text line: ``"%d"`` for a code, else ``"%.4f"`` numbers joined by commas.

    Numbers go through float32 first, as foolwood's ``vot_float2str`` (a C ``float`` argument).
    This is :func:`siammask_edu.io.format_vot_region`, the one formatter of VOT lines.

    See book/10_measuring.py.
    """
    return format_vot_region(region)


#: Write regions in the VOT text format (1 = init, 2 = failure, 0 = skipped):
#: :func:`siammask_edu.io.write_vot_polygons`, the one VOT result writer (float32 then
#: ``"%.4f"``, written atomically).
write_trajectory = write_vot_polygons


def region_to_polygon(region: np.ndarray) -> np.ndarray:
    """Vertices of a region as ``region.c`` stores them: np.ndarray (k, 2) float32.

    A rectangle ``x, y, w, h`` becomes (x,y), (x+w,y), (x+w,y+h), (x,y+h) (no -1).

    See book/10_measuring.py.
    """
    r = np.asarray(region, dtype=np.float64).ravel()
    if r.size == 4:
        x, y, w, h = r
        r = np.array([x, y, x + w, y, x + w, y + h, x, y + h])
    return r.astype(np.float32).reshape(-1, 2)


def _c_round(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v.astype(np.float64)) + 0.5)  # halves away from 0


def rasterize_polygon(poly: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scan-line fill of ``region.c`` (non-legacy): np.ndarray (height, width) bool.

    Vertices (float32, canvas coordinates) are C-rounded; per row y an edge with
    ``min(yi, yj) <= y <= max(yi, yj)`` and ``yi != yj`` gives the node
    ``int(xi + (y - yi) / (yj - yi) * (xj - xi))``; sorted nodes are walked pairwise
    (equal neighbours skip one), filling columns left..right inclusive.

    See book/10_measuring.py.
    """
    p = _c_round(np.asarray(poly, dtype=np.float32))
    xi, yi = p[:, 0], p[:, 1]
    prev = np.arange(len(p)) - 1
    xj, yj = xi[prev], yi[prev]  # j = the previous vertex, cyclically
    y = np.arange(height, dtype=np.float64)[:, None]  # (H, 1)
    valid = (yi != yj) & (np.minimum(yi, yj) <= y) & (y <= np.maximum(yi, yj))  # (H, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        node = np.trunc(xi + (y - yi) / (yj - yi) * (xj - xi))
    nodes = np.sort(np.where(valid, node, 2.0**62), axis=1).astype(np.int64)  # (H, k)
    count = valid.sum(1)
    rows = np.arange(height)
    i = np.zeros(height, np.int64)
    active = count >= 2
    spans = []
    for _ in range(nodes.shape[1]):
        active &= i < count - 1
        if not active.any():
            break
        a = nodes[rows, np.minimum(i, nodes.shape[1] - 1)]
        b = nodes[rows, np.minimum(i + 1, nodes.shape[1] - 1)]
        eq, ne = active & (a == b), active & (a != b)
        stop = ne & (a >= width)
        fill = ne & ~stop & (b >= 0)
        spans.append((rows[fill], np.maximum(a[fill], 0), np.minimum(b[fill], width - 1)))
        i = i + eq + 2 * (ne & ~stop)
        active &= ~stop
    diff = np.zeros(height * (width + 1), np.int64)
    for r, lo, hi in spans:
        diff += np.bincount(r * (width + 1) + lo, minlength=diff.size)
        diff -= np.bincount(r * (width + 1) + hi + 1, minlength=diff.size)
    return np.cumsum(diff.reshape(height, width + 1), axis=1)[:, :width] > 0


def _bounds(poly: np.ndarray, clip: np.ndarray) -> np.ndarray:
    lo, hi = np.floor(poly.min(0)), np.ceil(poly.max(0))  # (left, top), (right, bottom)
    return np.array(
        [max(lo[0], clip[0]), max(lo[1], clip[1]), min(hi[0], clip[2]), min(hi[1], clip[3])],
        dtype=np.float32,
    )


def region_overlap(
    a: np.ndarray, b: np.ndarray, bounds: tuple[float, float] | None = None
) -> float:
    """Rasterised IoU of two regions, bit-exact to VOT ``region.c`` ``compute_polygon_overlap``.

    Args:
        a, b: regions (see module docstring); a code gives NaN.
        bounds: ``(W, H)`` clips both regions to ``[0, W] x [0, H]`` (accuracy uses the
            image size, EAO ``(W-1, H-1)``); None = unbounded.

    Returns:
        float: a float32 quotient |A ∧ B| / |A ∨ B|; 0 for boxes that only touch, NaN for codes.

    See book/10_measuring.py.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size == 1 or b.size == 1:
        return float("nan")
    p1, p2 = region_to_polygon(a), region_to_polygon(b)
    inf = np.float32(np.inf)
    clip = (
        np.array([0, 0, bounds[0], bounds[1]], np.float32)
        if bounds is not None
        else np.array([-inf, -inf, inf, inf], np.float32)
    )
    b1, b2 = _bounds(p1, clip), _bounds(p2, clip)
    x0, y0 = min(b1[0], b2[0]), min(b1[1], b2[1])
    width = int(max(b1[2], b2[2]) - x0) + 1
    height = int(max(b1[3], b2[3]) - y0) + 1
    area1 = (b1[2] - b1[0]) * (b1[3] - b1[1])  # float32, as region.c
    area2 = (b2[2] - b2[0]) * (b2[3] - b2[1])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a1, a2 = np.float64(area1), np.float64(area2)
        if a1 / a2 < 1e-10 or a2 / a1 < 1e-10 or width < 1 or height < 1:
            return 0.0
        inter = (min(b1[2], b2[2]) - max(b1[0], b2[0])) * (min(b1[3], b2[3]) - max(b1[1], b2[1]))
        iou = inter / (area1 + area2 - inter)  # float32
        if max(iou, 0) == 0:  # C MAX(0, iou): a NaN iou passes on
            return 0.0
        shift = np.array([x0, y0], np.float32)
        m1 = rasterize_polygon(p1 - shift, width, height)
        m2 = rasterize_polygon(p2 - shift, width, height)
        return float(np.float32(np.count_nonzero(m1 & m2)) / np.float32(np.count_nonzero(m1 | m2)))


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Analytic (continuous) IoU of two regions, for comparison with :func:`region_overlap`.

    The regions (4 or 2k numbers) become polygons as :func:`region_to_polygon` and go to
    :func:`siammask_edu.boxes.rotated_iou`, the one analytic polygon IoU (shapely).

    Returns:
        float64 IoU; NaN for a code; 0 if the union has zero area.

    See book/10_measuring.py.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size == 1 or b.size == 1:
        return float("nan")
    return rotated_iou(region_to_polygon(a), region_to_polygon(b))


def trajectory_overlaps(pred: Sequence, gt: Sequence, bounds=None, burnin: int = 0) -> np.ndarray:
    """Per-frame :func:`region_overlap` (pysot ``calculate_accuracy``'s list), NaN for codes.

    With ``burnin > 0``, frames ``i .. i+burnin-1`` after every ``1`` line (from the original
    trajectory) become unknown. Only the first ``min(len(pred), len(gt))`` frames are used.

    Returns:
        np.ndarray (N,) float64 (float32-exact values).

    See book/10_measuring.py.
    """
    pred = [np.atleast_1d(np.asarray(r, np.float64)) for r in pred]
    n = min(len(pred), len(gt))
    known = np.ones(n, bool)
    for i, r in enumerate(pred[:n]):
        if r.size == 1 and r[0] == 1:
            known[i : i + burnin] = False
    return np.array(
        [region_overlap(pred[i], gt[i], bounds) if known[i] else np.nan for i in range(n)],
        dtype=np.float64,
    )


def failures(pred: Sequence) -> tuple[int, list[int]]:
    """Number and 0-based frames of ``2`` lines (pysot ``calculate_failures``).

    See book/10_measuring.py.
    """
    idx = [i for i, r in enumerate(pred) if np.size(r) == 1 and np.ravel(r)[0] == 2]
    return len(idx), idx


def accuracy(
    pred: Sequence, gt: Sequence, bounds=None, burnin: int = 10
) -> tuple[float, np.ndarray]:
    """Accuracy = nanmean of the burn-in-masked overlaps (AccuracyRobustnessBenchmark, burn-in 10).

    Args:
        pred, gt: trajectories (lists of regions); bounds: ``(W, H)`` of the images.

    Returns:
        (accuracy float64, per-frame overlaps np.ndarray (N,) float64). NaN if no frame is known.

    See book/10_measuring.py.
    """
    ov = trajectory_overlaps(pred, gt, bounds, burnin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return (float(np.nanmean(ov)) if ov.size else 0.0), ov


def robustness(n_failures: int, n_frames: int) -> float:
    """pysot's printed Robustness: ``100 * failures / frames`` (not VOT's exp. reliability).

    See book/10_measuring.py.
    """
    if n_frames <= 0:
        raise ValueError("n_frames must be positive")
    return n_failures / n_frames * 100  # pysot's operation order


def eao_fragments(
    overlaps: Sequence[np.ndarray],
    failure_frames: Sequence[Sequence[int]],
    gt_lengths: Sequence[int] | None = None,
    skipping: int = 5,
    runs_per_sequence: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Fragments and weights of pysot ``EAOBenchmark._calculate_eao`` (tag ``all``).

    Args:
        overlaps: per run, np.ndarray (n,) of burn-in-0 overlaps with bounds (W-1, H-1).
        failure_frames: per run, the 0-based failure frames.
        gt_lengths: per run, the ground-truth length (default ``n``).
        skipping: frames skipped after a failure (5).
        runs_per_sequence: repetitions; each weight is multiplied by its inverse.

    Returns:
        (fragments np.ndarray (R, L) float64, weights np.ndarray (R,) float64), L = max n;
        closed fragments are 0-padded, last ones NaN-padded; unused rows stay NaN.

    See book/10_measuring.py.
    """
    lens = [len(o) for o in overlaps]
    gt_lengths = lens if gt_lengths is None else list(gt_lengths)
    L = max(lens)
    R = sum(len(f) + 1 for f in failure_frames)
    frag, w = np.full((R, L), np.nan), np.full(R, np.nan)
    seq_w, row = 1.0 / runs_per_sequence, 0
    for o, fails, n_gt in zip(overlaps, failure_frames, gt_lengths):
        o, n = np.asarray(o, np.float64), len(o)
        if len(fails) == 0:
            frag[row, :n] = o
            w[row] = seq_w * n / n
            row += 1
            continue
        pts = [0] + [f + skipping for f in fails if f + skipping <= n]
        for k, p in enumerate(pts):
            last = k == len(pts) - 1
            seg = o[p:] if last else o[p : pts[k + 1] + 1]
            if not last:
                frag[row] = 0
            frag[row, : len(seg)] = np.where(np.isnan(seg), 0.0, seg)
            w[row] = seq_w * (
                (n - p) / (n_gt - p + 1e-16)
                if last
                else (min(pts[k + 1] + 1, n) - p) / (pts[k + 1] - p + 1)
            )
            row += 1
    return frag, w


def expected_overlap_curve(fragments: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Expected-overlap curve of pysot ``calculate_expected_overlap``.

    ``c[0] = 1``; for i >= 1, the weighted mean over rows not NaN at column i of the mean of
    columns 1..i (column 0 never counts); 0 where no row reaches i.

    Returns:
        np.ndarray (L,) float32.

    See book/10_measuring.py.
    """
    frag, w = np.asarray(fragments, np.float64), np.asarray(weights, np.float64)
    L = frag.shape[1]
    curve = np.zeros(L, np.float32)
    curve[0] = 1
    if L < 2:
        return curve
    means = np.cumsum(frag[:, 1:], axis=1) / np.arange(1, L)  # (R, L-1): mean of cols 1..i
    mask = ~np.isnan(frag[:, 1:])
    num = np.where(mask, means * w[:, None], 0.0).sum(0)
    den = np.where(mask, w[:, None], 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve[1:] = np.where(mask.any(0), num / den, 0.0)
    return curve


def eao(curve: np.ndarray, interval: tuple[int, int] | str = "VOT2018") -> float:
    """EAO = mean of the curve over 1-based lengths [low, high], truncated at its length.

    Args:
        curve (np.ndarray[L] float32): from :func:`expected_overlap_curve`.
        interval: ``(low, high)`` or a key of :data:`EAO_INTERVALS`.

    Returns:
        float64; NaN if the curve is shorter than ``low``.

    See book/10_measuring.py.
    """
    low, high = EAO_INTERVALS[interval] if isinstance(interval, str) else interval
    c = np.asarray(curve)
    weight = np.zeros(len(c))
    weight[low - 1 : high] = 1
    ok = ~np.isnan(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(c[ok] * weight[ok]) / np.sum(weight[ok]))


def evaluate_vot(
    results: dict,
    groundtruth: dict,
    image_sizes: dict,
    intervals: Sequence[str] = ("VOT2018", "VOT2016-stvir"),
    burnin: int = 10,
    skipping: int = 5,
) -> dict:
    """Dataset-level accuracy, lost number, robustness and EAO of one tracker (one run each).

    Args:
        results: ``{sequence: trajectory}``; groundtruth: ``{sequence: trajectory}``;
        image_sizes: ``{sequence: (W, H)}``; intervals: EAO intervals to report.

    Returns:
        dict with ``per_sequence`` rows (accuracy, failures, robustness, n_frames), pooled
        ``accuracy`` (nanmean over all frames), ``lost_number``, ``robustness``
        (100·failures/frames), ``curve`` (float32) and ``eao`` ``{interval: value}``.

    Raises:
        ValueError: if ``results`` is empty, a sequence lacks ground truth or a size, or a
            trajectory's length differs from its ground truth's (all such listed).

    See book/10_measuring.py.
    """
    if not results:
        raise ValueError("empty dataset: no results")
    missing = [s for s in results if s not in groundtruth or s not in image_sizes]
    if missing:
        raise ValueError(f"no ground truth or image size for: {', '.join(missing)}")
    uneven = [f"{s}: {len(results[s])} result lines for {len(groundtruth[s])} ground-truth "
              "frames" for s in results if len(results[s]) != len(groundtruth[s])]
    if uneven:  # line i is frame i: another length means frames lost or added
        raise ValueError("results and ground truth pair line by line, frame by frame; "
                         + "; ".join(uneven))
    rows, pooled, eao_ov, eao_f, gt_len = [], [], [], [], []
    for seq, traj in results.items():
        (W, H), gt = image_sizes[seq], groundtruth[seq]
        acc, ov = accuracy(traj, gt, (W, H), burnin)
        nf, fr = failures(traj)
        rows.append(
            {
                "sequence": seq,
                "accuracy": acc,
                "failures": nf,
                "n_frames": len(ov),
                "robustness": robustness(nf, len(ov)),
            }
        )
        pooled.append(ov)
        eao_ov.append(trajectory_overlaps(traj, gt, (W - 1, H - 1), 0))
        eao_f.append(fr)
        gt_len.append(len(gt))
    ov = np.concatenate(pooled)
    curve = expected_overlap_curve(*eao_fragments(eao_ov, eao_f, gt_len, skipping))
    lost = sum(r["failures"] for r in rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        acc = float(np.nanmean(ov))
    return {
        "per_sequence": rows,
        "accuracy": acc,
        "lost_number": lost,
        "robustness": robustness(lost, len(ov)),
        "n_frames": len(ov),
        "curve": curve,
        "eao": {k: eao(curve, k) for k in intervals},
    }


@runtime_checkable
class VOTTracker(Protocol):
    """What :func:`run_supervised` needs: ``init(frame, box_or_polygon)`` and ``track(frame)``
    returning an object with ``.polygon`` (np.ndarray (4, 2), frame pixels) and, for
    ``region="box"``, ``.box`` (x, y, w, h). :class:`siammask_edu.tracker.Tracker` fits.

    See book/10_measuring.py.
    """

    def init(self, frame: np.ndarray, box: Any) -> None: ...

    def track(self, frame: np.ndarray) -> Any: ...


def run_supervised(
    tracker: VOTTracker | Callable[[], VOTTracker],
    frames: Iterable[np.ndarray],
    groundtruth: Sequence,
    image_size: tuple[int, int] | None = None,
    skipping: int = 5,
    region: str = "polygon",
    init_with: str = "auto",
) -> list:
    """The VOT supervised reset protocol of foolwood ``track_vot``.

    Frame ``start`` (0 first) re-initialises the tracker on the GT of that frame and writes
    ``1``; a later frame whose output has zero :func:`region_overlap` with the GT (bounds
    ``(W, H)``, unrounded output) writes ``2`` and sets ``start = f + skipping``; frames before
    ``start`` write ``0``. A non-finite output counts as a failure (the released code would
    treat a NaN overlap as a success).

    Args:
        tracker: a :class:`VOTTracker`, or a factory called for a fresh tracker at each init.
        frames: the images, np.ndarray (H, W, 3) uint8 RGB (only ``.shape`` is read here).
        groundtruth: per frame a region (8-number polygon or 4-number rectangle); as many
            as ``frames``.
        image_size: ``(W, H)``; default from each frame's shape.
        skipping: frames from a failure to the re-init (5).
        region: write the output's ``"polygon"`` (8 numbers) or ``"box"`` (x, y, w, h).
        init_with: ``"box"``: ``init(frame, (x, y, w, h))`` with the released area-preserving
            box (:func:`~siammask_edu.geometry.vot_polygon_to_cxcywh`, centre ``x + w/2``);
            ``"polygon"``: ``init(frame, np.ndarray (k, 2) float64)``; ``"init_polygon"``:
            ``init_polygon(frame, 8 numbers)``; ``"auto"`` (default): ``init_polygon`` where
            the tracker has it and the GT is a polygon, else ``"box"``.

    Returns:
        list of regions (np.ndarray (1,) codes or the outputs, float64), one per frame,
        ready for :func:`write_trajectory` and :func:`accuracy`.

    Raises:
        ValueError: a bad ``region``/``init_with``, or ``frames`` and ``groundtruth`` of
            different lengths (found when the frames run out).

    See book/10_measuring.py.
    """
    if region not in ("polygon", "box") or init_with not in (
        "auto",
        "box",
        "polygon",
        "init_polygon",
    ):
        raise ValueError(
            "region must be 'polygon' or 'box'; init_with 'auto', 'box', "
            f"'polygon' or 'init_polygon'; got {region!r}, {init_with!r}"
        )
    is_factory = isinstance(tracker, type) or not isinstance(tracker, VOTTracker)
    out, start, trk = [], 0, None
    n_gt, n_frames = len(groundtruth), 0
    for f, frame in enumerate(frames):
        n_frames = f + 1
        if f >= n_gt:  # count them all for the message, tracking none
            continue
        gt = groundtruth[f]
        if f == start:
            trk = tracker() if is_factory else tracker
            gt = np.asarray(gt, np.float64).ravel()
            mode = init_with
            if mode == "auto":
                mode = "init_polygon" if hasattr(trk, "init_polygon") and gt.size == 8 else "box"
            if mode == "box":
                cx, cy, w, h = vot_polygon_to_cxcywh(gt)
                trk.init(frame, np.array([cx - w / 2, cy - h / 2, w, h]))
            elif mode == "polygon":
                trk.init(frame, region_to_polygon(gt).astype(np.float64))
            else:
                trk.init_polygon(frame, gt)
            out.append(np.array([1.0]))
        elif f > start:
            res = trk.track(frame)
            loc = np.asarray(res.polygon if region == "polygon" else res.box, np.float64).ravel()
            W, H = image_size if image_size is not None else (frame.shape[1], frame.shape[0])
            ov = region_overlap(gt, loc, (W, H)) if np.isfinite(loc).all() else 0.0
            if ov > 0 or math.isnan(ov):
                out.append(loc)
            else:
                out.append(np.array([2.0]))
                start = f + skipping
        else:
            out.append(np.array([0.0]))
    if n_frames != n_gt:
        raise ValueError(f"{n_frames} frames for {n_gt} ground-truth regions: frame f pairs "
                         "with region f, so both must cover the same frames")
    return out
