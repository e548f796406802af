"""DAVIS region similarity J and boundary accuracy F, exactly as the official evaluation.

Everything here mirrors davisvideochallenge/davis2017-evaluation (commit ``ac7c43f``):
``davis2017.metrics.db_eval_iou`` (J), ``db_eval_boundary`` / ``f_measure`` / ``_seg2bmap``
(F), ``davis2017.utils.db_statistics`` (mean, recall, decay) and the semi-supervised protocol
of ``davis2017.evaluation.DAVISEvaluation.evaluate`` (first and last frame dropped, one J/F
per object, the global table of ``evaluation_method.py``). Masks are ``np.ndarray (H, W)``
in image coordinates; a label map holds 0 for background and ``k`` for object ``k``.

See book/10_measuring.py.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..io import davis_palette, write_palette_png
from ..io import merge_objects as _merge_objects

STAT_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


#: ``np.ndarray (256, 3) uint8``: the DAVIS palette (the PASCAL VOC colour map; 255 = void),
#: :func:`siammask_edu.io.davis_palette` computed once.
DAVIS_PALETTE = davis_palette()


def read_mask_png(path: str | os.PathLike) -> np.ndarray:
    """Read a DAVIS mask PNG as stored values (palette indices, or grey levels for 'L').

    Returns:
        np.ndarray (H, W) uint8: for a palette ('P') PNG the object ids (0 background,
        255 void in DAVIS-2017); for an 8-bit grey PNG the grey values (DAVIS-2016: 0/255).

    Raises:
        ValueError: if the PNG is not single-channel (e.g. an RGB rendering of a mask).

    See book/10_measuring.py.
    """
    with Image.open(path) as im:
        if im.mode not in ("P", "L", "1"):
            raise ValueError(f"{path}: expected a palette or grey PNG, got mode {im.mode!r}")
        arr = np.array(im.convert("L") if im.mode == "1" else im)
    return arr.astype(np.uint8, copy=False)


#: Write a label map as a DAVIS palette PNG: :func:`siammask_edu.io.write_palette_png`
#: (mode 'P' with :data:`DAVIS_PALETTE`, parent folders created). Kept under this name for
#: one release; new code calls ``io.write_palette_png`` (``io.write_mask_png`` is a
#: different thing: one binary mask as a 0/255 grey PNG).
write_mask_png = write_palette_png


def merge_objects(prob_maps: np.ndarray, threshold: float) -> np.ndarray:
    """Merge per-object probability maps into one label map (SiamMask's DAVIS-2017 rule).

    :func:`siammask_edu.io.merge_objects` (the one implementation) under the keyword
    ``threshold``; kept for one release.

    Args:
        prob_maps (np.ndarray[K, H, W] float): per-object foreground probabilities.
        threshold: a pixel gets a label only where the largest probability is ``> threshold``.

    Returns:
        np.ndarray (H, W) uint8: ``argmax + 1`` where ``max > threshold``, else 0
        (foolwood SiamMask ``tools/test.py``, multi-object DAVIS).

    See book/10_measuring.py.
    """
    return _merge_objects(prob_maps, threshold)


def jaccard(pred: np.ndarray, gt: np.ndarray) -> np.ndarray | float:
    """Region similarity J = |P ∩ G| / |P ∪ G| (``db_eval_iou``); an empty union gives 1.

    Args:
        pred (np.ndarray[..., H, W] bool): predicted masks (cast with ``astype(bool)``).
        gt (np.ndarray[..., H, W] bool): ground-truth masks, same shape.

    Returns:
        float64 for one frame, np.ndarray (...) float64 for a stack.

    Raises:
        ValueError: if the shapes differ.

    See book/10_measuring.py.
    """
    pred, gt = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    inter = np.sum(pred & gt, axis=(-2, -1))
    union = np.sum(pred | gt, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = inter / union
    if np.ndim(j) == 0:
        return 1.0 if np.isclose(union, 0) else float(j)
    j[np.isclose(union, 0)] = 1
    return j


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary map of a binary mask (``_seg2bmap``), half a pixel towards the origin.

    A pixel is on the boundary if it differs from its right, lower or lower-right neighbour
    (outside = 0); the last row uses the right neighbour only, the last column the lower one
    only, and the bottom-right pixel is 0.

    Returns:
        np.ndarray (H, W) bool.

    See book/10_measuring.py.
    """
    seg = np.asarray(mask, dtype=bool)
    b = np.zeros_like(seg)
    c = seg[:-1, :-1]  # the official e/s/se shifted copies, written as slices
    b[:-1, :-1] = (c ^ seg[:-1, 1:]) | (c ^ seg[1:, :-1]) | (c ^ seg[1:, 1:])
    b[-1, :-1] = seg[-1, :-1] ^ seg[-1, 1:]  # last row: right neighbour only
    b[:-1, -1] = seg[:-1, -1] ^ seg[1:, -1]  # last column: lower neighbour only
    return b  # b[-1, -1] stays 0


def disk(radius: float) -> np.ndarray:
    """Digital disk ``dx² + dy² <= radius²`` (scikit-image ``morphology.disk``), uint8 (2r+1, 2r+1).

    See book/10_measuring.py.
    """
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    return np.array(x**2 + y**2 <= radius**2, dtype=np.uint8)


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> np.ndarray | float:
    """Boundary F-measure (``db_eval_boundary`` -> ``f_measure``), prediction first.

    The tolerance is ``bound_th`` pixels if >= 1, else ``ceil(bound_th * ||(H, W)||)``
    (8 px at 480x854); boundaries are matched through an OpenCV dilation with :func:`disk`.
    No predicted boundary (GT has one): P=1, R=0; no GT boundary: P=0, R=1; neither: P=R=1;
    F = 2PR/(P+R), 0 if P+R = 0.

    Args:
        pred (np.ndarray[..., H, W] bool): predicted masks.
        gt (np.ndarray[..., H, W] bool): ground-truth masks, same shape.
        bound_th: tolerance as a fraction of the image diagonal (< 1) or in pixels (>= 1).

    Returns:
        float for one frame, np.ndarray (...) float64 for a stack.

    Raises:
        ValueError: if the shapes differ or are not at least 2-D.

    See book/10_measuring.py.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim < 2:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    if pred.ndim > 2:
        flat_p, flat_g = pred.reshape(-1, *pred.shape[-2:]), gt.reshape(-1, *gt.shape[-2:])
        out = [boundary_f(p, g, bound_th) for p, g in zip(flat_p, flat_g)]
        return np.array(out, dtype=np.float64).reshape(pred.shape[:-2])
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(pred.shape))
    fg_b, gt_b = seg2bmap(pred), seg2bmap(gt)
    # Dilate only the bounding box of all boundary pixels: the dilation is only read at
    # boundary pixels and outside pixels are 0, so this equals the full-image result.
    rows, cols = np.flatnonzero((fg_b | gt_b).any(1)), np.flatnonzero((fg_b | gt_b).any(0))
    if rows.size:
        crop = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        fg_b, gt_b = fg_b[crop], gt_b[crop]
    se = disk(bound_pix)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), se)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), se)
    n_fg, n_gt = np.sum(fg_b), np.sum(gt_b)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_b * gt_dil) / float(n_fg)
        recall = np.sum(gt_b * fg_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall and decay of per-frame values (``davis2017.utils.db_statistics``).

    mean = nanmean(v); recall = mean(v > 0.5) (strict); decay = nanmean(bin 0) - nanmean(bin 3)
    with 4 bins ``v[ids[k] : ids[k+1] + 1]`` (inclusive at both ends) and
    ``ids = round(linspace(1, N, 5) + 1e-10) - 1`` cast to uint8 as the official code does
    (modulo 256; it only matters for N > 256 frames).

    Args:
        values (np.ndarray[N] float): per-frame J or F of the frames used.

    Returns:
        (mean, recall, decay) as floats (NaN where the official code gives NaN).

    See book/10_measuring.py.
    """
    v = np.asarray(values, dtype=np.float64)
    ids = np.round(np.linspace(1, len(v), 5) + 1e-10) - 1
    ids = ids.astype(np.int64) % 256  # the official .astype(np.uint8)
    bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean, recall = np.nanmean(v), np.nanmean(v > 0.5)
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


def _objects(labels: np.ndarray, n_objects: int) -> np.ndarray:
    if labels.dtype == bool:
        return labels[None]
    return labels[None] == np.arange(1, n_objects + 1).reshape(-1, *([1] * labels.ndim))


def evaluate_sequence(
    pred_masks: np.ndarray,
    gt_masks: np.ndarray,
    n_objects: int | None = None,
    bound_th: float = 0.008,
) -> list[dict]:
    """Per-object J and F of one sequence over the frames given (no frame is dropped here).

    Args:
        pred_masks (np.ndarray[T, H, W] int or bool): predicted label maps (0 background,
            k object k) or binary masks (one object).
        gt_masks (np.ndarray[T, H, W] int or bool): ground truth in the same encoding
            (void already removed).
        n_objects: objects 1..n_objects are evaluated; default ``max(gt_masks)`` (1 for bool).
            An object absent from the prediction counts as an empty mask.
        bound_th: see :func:`boundary_f`.

    Returns:
        One dict per object: ``object`` (1-based), ``J_per_frame``/``F_per_frame``
        (np.ndarray (T,) float64), ``J``/``F`` dicts with ``mean``, ``recall``, ``decay``.

    Raises:
        ValueError: on shape mismatch, or a predicted id above ``n_objects`` (the official
            code stops with "an index higher than the number of objects").

    See book/10_measuring.py.
    """
    pred, gt = np.asarray(pred_masks), np.asarray(gt_masks)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(
            f"expected two (T, H, W) stacks of one shape, got {pred.shape} and {gt.shape}"
        )
    binary = gt.dtype == bool
    if n_objects is None:
        n_objects = 1 if binary else int(gt.max(initial=0))
    if binary != (pred.dtype == bool):
        raise ValueError("pred_masks and gt_masks must both be bool or both be label maps")
    if not binary and int(pred.max(initial=0)) > n_objects:
        raise ValueError(
            f"prediction holds object id {int(pred.max())} but the sequence "
            f"has {n_objects} objects"
        )
    out = []
    for k, (p, g) in enumerate(zip(_objects(pred, n_objects), _objects(gt, n_objects)), 1):
        j, f = np.asarray(jaccard(p, g), float), np.asarray(boundary_f(p, g, bound_th), float)
        out.append(
            {
                "object": k,
                "J_per_frame": j,
                "F_per_frame": f,
                "J": dict(zip(("mean", "recall", "decay"), db_statistics(j))),
                "F": dict(zip(("mean", "recall", "decay"), db_statistics(f))),
            }
        )
    return out


@dataclass(frozen=True)
class DavisResults:
    """Output of :func:`evaluate_davis`.

    Attributes:
        per_object: one row per (sequence, object): ``Sequence`` (``<seq>_<k>`` as the
            official table), ``sequence``, ``object``, ``n_frames`` and the six statistics.
        global_metrics: ``J&F-Mean``, ``J-Mean`` ... ``F-Decay``: the mean over all rows.
        per_frame: ``{(sequence, object): (J np.ndarray (T,), F np.ndarray (T,))}``.

    See book/10_measuring.py.
    """

    per_object: list[dict]
    global_metrics: dict
    per_frame: dict = field(repr=False)


def _davis_folder(root: Path, year: int) -> Path:
    for cand in (root, root / f"davis{year}", root / f"DAVIS{year}", root / "DAVIS"):
        if (cand / "Annotations").is_dir():
            return cand
    raise FileNotFoundError(f"no DAVIS layout (Annotations/<resolution>/) under {root}")


def _list_sequences(base: Path, year: int, subset: str, resolution: str) -> list[str]:
    listing = base / "ImageSets" / str(year) / f"{subset}.txt"
    if listing.is_file():
        names = [
            ln.split()[0].strip("/").split("/")[-1]
            for ln in listing.read_text().splitlines()
            if ln.strip()
        ]
        return list(dict.fromkeys(names))
    return sorted(p.name for p in (base / "Annotations" / resolution).iterdir() if p.is_dir())


def evaluate_davis(
    results_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    year: int = 2016,
    sequences: list[str] | None = None,
    resolution: str = "480p",
    exclude_last: bool = True,
    subset: str = "val",
    bound_th: float = 0.008,
) -> DavisResults:
    """Semi-supervised DAVIS evaluation of a folder ``<results_dir>/<seq>/<frame>.png``.

    Frame 0 (given) is dropped, and the last frame too if ``exclude_last`` (the official
    ``[1:-1]``). DAVIS-2016 binarises GT and predictions (> 0); DAVIS-2017 reads object ids,
    turns GT void (255) into background and evaluates objects 1..max(first GT frame).

    Args:
        results_dir: folder with one sub-folder of PNGs per sequence.
        data_root: the DAVIS folder (holding ``Annotations/``) or a folder holding
            ``davis<year>/``.
        year: 2016 or 2017.
        sequences: names to evaluate; default ``ImageSets/<year>/<subset>.txt`` or all.
        resolution: ``480p`` (official) or another ``Annotations`` sub-folder.
        exclude_last: drop the last frame as well (the official protocol).
        subset: sequence list to read when ``sequences`` is None.
        bound_th: see :func:`boundary_f`.

    Returns:
        DavisResults (per-object rows and the global means of ``evaluation_method.py``).

    Raises:
        ValueError: results folder is the ground-truth folder; empty dataset or a sequence
            without frames to evaluate; a predicted id above the number of objects.
        FileNotFoundError: missing DAVIS layout or ground truth.
        InputProblemsError: (both a FileNotFoundError and a ValueError) every problem of
            the results folder at once, grouped (:func:`check_results`): missing sequences
            and frames, PNGs of the wrong size or mode, unreadable PNGs, extra PNGs.

    See book/10_measuring.py.
    """
    if year not in (2016, 2017):
        raise ValueError(f"year must be 2016 or 2017, got {year}")
    base = _davis_folder(Path(data_root), year)
    anno = base / "Annotations" / resolution
    res = Path(results_dir)
    if res.resolve() in (anno.resolve(), base.resolve(), (base / "Annotations").resolve()):
        raise ValueError(f"results folder {res} is the ground-truth folder")
    seqs = (
        _list_sequences(base, year, subset, resolution) if sequences is None else list(sequences)
    )
    if not seqs:
        raise ValueError("empty dataset: no sequences to evaluate")
    plan = {}
    for seq in seqs:
        gt_files = sorted((anno / seq).glob("*.png"))
        if not gt_files:
            raise FileNotFoundError(f"no ground-truth PNGs in {anno / seq}")
        if (res / seq).resolve() == (anno / seq).resolve():
            raise ValueError(f"results for {seq} point to the ground-truth folder {anno / seq}")
        used = gt_files[1:-1] if exclude_last else gt_files[1:]
        if not used:
            raise ValueError(f"sequence {seq} has no frames to evaluate ({len(gt_files)} total)")
        plan[seq] = (gt_files, used)
    check_results(res, plan)
    plan = {seq: (gt_files[0], used) for seq, (gt_files, used) in plan.items()}
    rows, per_frame = [], {}
    for seq, (first, used) in plan.items():
        gts, preds = [], []
        for g in used:
            gt, pr = read_mask_png(g), read_mask_png(res / seq / g.name)
            if gt.shape != pr.shape:
                raise ValueError(
                    f"{res / seq / g.name}: size {pr.shape[1]}x{pr.shape[0]} "
                    f"(WxH) differs from the ground truth {gt.shape[1]}x{gt.shape[0]}"
                )
            gts.append(gt)
            preds.append(pr)
        gt, pr = np.stack(gts), np.stack(preds)
        if year == 2016:
            gt, pr, n_obj = gt > 0, pr > 0, 1
        else:
            gt[gt == 255] = 0
            g0 = read_mask_png(first)
            n_obj = int(np.where(g0 == 255, 0, g0).max())
        for r in evaluate_sequence(pr, gt, n_obj, bound_th):
            k = r["object"]
            per_frame[(seq, k)] = (r["J_per_frame"], r["F_per_frame"])
            rows.append(
                {
                    "Sequence": f"{seq}_{k}",
                    "sequence": seq,
                    "object": k,
                    "n_frames": len(used),
                    **{
                        f"{m}-{s.capitalize()}": r[m][s]
                        for m in "JF"
                        for s in ("mean", "recall", "decay")
                    },
                }
            )
    if not rows:
        raise ValueError("empty dataset: no objects to evaluate")
    g = {k: float(np.mean([r[k] for r in rows])) for k in STAT_KEYS[1:]}
    g = {"J&F-Mean": (g["J-Mean"] + g["F-Mean"]) / 2.0, **g}
    return DavisResults(rows, g, per_frame)


def _png_header(path: Path) -> tuple[str, tuple[int, int]]:
    with Image.open(path) as im:
        return im.mode, im.size


def check_results(results_dir: str | os.PathLike, plan: dict) -> None:
    """Check a DAVIS results folder against the ground truth, reporting every problem at once.

    Reads only the PNG headers. For every sequence: its folder exists (else ``missing``,
    whole sequence); every evaluated frame has a result PNG of the ground truth's file name
    (``missing``), of the ground truth's size (``wrong size``) and single-channel (palette
    or grey; ``wrong mode``) that can be opened (``unreadable``); no PNG names a frame
    the ground truth lacks (``extra``: e.g. results numbered from 1). Results for frames
    that are not evaluated (frame 0, the last frame) may be present or not.

    Args:
        results_dir: folder ``<sequence>/<frame>.png``.
        plan: ``{sequence: (all ground-truth PNGs, the evaluated ones)}``.

    Raises:
        InputProblemsError: (a FileNotFoundError and a ValueError) naming every problem,
            grouped by kind.

    See book/10_measuring.py.
    """
    from .inputs import Problems

    res = Path(results_dir)
    problems = Problems()
    for seq, (gt_files, used) in plan.items():
        folder = f"{seq}/"
        if not (res / seq).is_dir():
            problems.add("missing", f"{seq}/ (whole sequence)")
            continue
        names = {g.name for g in gt_files}
        for g in used:
            r = res / seq / g.name
            if not r.is_file():
                problems.add("missing", folder, g.name)
                continue
            try:
                mode, size = _png_header(r)
            except (OSError, ValueError) as exc:
                problems.add("unreadable", folder, g.name, " ".join(str(exc).split()))
                continue
            if mode not in ("P", "L", "1"):
                problems.add("wrong mode", folder, g.name,
                             f"mode {mode!r} (expected a palette or grey PNG)")
            _, gt_size = _png_header(g)
            if size != gt_size:
                problems.add("wrong size", folder, g.name,
                             f"{size[0]}x{size[1]} (WxH) differs from the ground truth "
                             f"{gt_size[0]}x{gt_size[1]}")
        for p in sorted((res / seq).iterdir()):
            if p.suffix.lower() == ".png" and p.is_file() and p.name not in names:
                problems.add("extra", folder, p.name, "no ground-truth frame of that name")
    problems.raise_if_any(f"results in {res} do not match the ground truth")


def write_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write rows (e.g. ``DavisResults.per_object`` or ``[global_metrics]``) as CSV, floats in full.

    Raises:
        ValueError: if ``rows`` is empty.

    See book/10_measuring.py.
    """
    if not rows:
        raise ValueError("no rows to write")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(
            {
                k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                for k, v in r.items()
            }
            for r in rows
        )
