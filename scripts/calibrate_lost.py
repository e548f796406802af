"""Calibrate ``TrackerConfig.lost_score`` (``TrackResult.lost``) and ``seg_thr`` on DAVIS-2016 train sequences.

Usage (from the checkout root)::

    python scripts/calibrate_lost.py CHECKPOINT [--out runs/lite/lost.json]
        [--resolution 240p] [--sequences bear boat ...] [--max-frames N]

The tracker runs over every DAVIS-2016 *train* sequence (``ImageSets/2016/train.txt``;
validation sequences are refused) at 240p, started from the bounding box of the first
annotation (a base-stage checkpoint without its untrained refinement, see
``export_lite.load_for_tracking``).

**Mask threshold first.** The mask never feeds back into the tracker's state (the box
branch moves it), so one run gives each frame's J for every threshold of ``--seg-thrs``;
``seg_thr`` is the one with the best mean over sequences of the per-sequence mean J (the
released code took its 0.35 from a search on the benchmark itself; a trained-here model
gets its own value from its own training sequences).

Then every tracked frame gets a label, its J taken at that ``seg_thr``:

* **on target**: the mask's J with the annotation is >= ``--on-target`` (0.5);
* **off target**: J < ``--off-target`` (0.1): the tracker follows something else;
* **target absent**: the tracker is started on sequence *i* and then fed the frames of
  sequence *i + 1* (resized to the init frame's size), where its target does not exist
  (the other sequence may show a similar object: the label is then pessimistic);
* frames with J in between are ambiguous and not used.

The lost threshold ``t`` maximises the balanced accuracy ``(P(score >= t | on target) +
P(score < t | off target or absent)) / 2`` over the midpoints between consecutive observed
scores (ties: the median of the best thresholds). The JSON written to ``--out`` holds the
thresholds, the rates and counts, J by mask threshold, the sequences and the rule;
``scripts/export_lite.py --lost-json`` stores both thresholds in the shipped checkpoint,
where :meth:`Tracker.from_pretrained` picks them up.

See book/09_training_lite.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_lite import load_for_tracking, track_davis

from siammask_edu import Tracker, io
from siammask_edu.datasets import DAVIS2016_VAL
from siammask_edu.paths import data_root, davis_sequence


SEG_THRS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def train_sequences(root=None) -> list[str]:
    """DAVIS-2016 train sequence names (``ImageSets/2016/train.txt``), val ones removed."""
    lst = data_root(root) / "davis2016" / "ImageSets" / "2016" / "train.txt"
    names = []
    for line in lst.read_text().splitlines():
        if line.strip():
            tok = line.split()[0].strip("/")
            names.append(tok.split("/")[-2] if "/" in tok else tok)
    return [n for n in dict.fromkeys(names) if n not in DAVIS2016_VAL]


def best_threshold(pos: np.ndarray, neg: np.ndarray) -> dict:
    """The threshold maximising balanced accuracy between ``pos`` (should be >= t) and
    ``neg`` (should be < t) scores.

    Returns:
        dict: ``lost_score``, ``balanced_accuracy``, ``tpr`` (on-target frames kept),
        ``tnr`` (lost frames flagged).

    Raises:
        ValueError: if either set is empty.
    """
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"need on-target and lost frames, got {pos.size} and {neg.size}")
    s = np.unique(np.concatenate([pos, neg]))
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    # scores are probabilities: a threshold stays in TrackerConfig's documented [0, 1]
    cands = np.clip(cands, 0.0, 1.0)
    tpr = (pos[None, :] >= cands[:, None]).mean(1)
    tnr = (neg[None, :] < cands[:, None]).mean(1)
    bal = (tpr + tnr) / 2
    best = np.flatnonzero(np.isclose(bal, bal.max()))
    i = best[len(best) // 2]
    return {"lost_score": float(cands[i]), "balanced_accuracy": float(bal[i]),
            "tpr": float(tpr[i]), "tnr": float(tnr[i])}


def _absent_scores(tracker: Tracker, name: str, other: str, resolution: str, max_frames,
                   root) -> list[float]:
    frames_dir, annos_dir = davis_sequence(name, resolution, root)
    first = io.read_image(io.list_images(frames_dir)[0])
    gt = cv2.imread(str(annos_dir / (io.list_images(frames_dir)[0].stem + ".png")),
                    cv2.IMREAD_GRAYSCALE) > 0
    tracker.init(first, cv2.boundingRect(gt.astype(np.uint8)))
    h, w = first.shape[:2]
    scores = []
    for p in io.list_images(davis_sequence(other, resolution, root)[0])[:max_frames]:
        f = io.read_image(p)
        if f.shape[:2] != (h, w):
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
        scores.append(tracker.track(f).score)
    return scores


def calibrate(checkpoint: Path, sequences=None, resolution: str = "240p", max_frames=None,
              on_target: float = 0.5, off_target: float = 0.1, threads: int = 2,
              root=None, config: str = "davis", seg_thrs=SEG_THRS) -> dict:
    """Run the protocol of the module docstring; returns the JSON-able result.

    ``seg_thrs``: candidate mask thresholds (None or empty: keep the preset's ``seg_thr``
    and do not calibrate it).
    """
    sequences = list(sequences) if sequences else train_sequences(root)
    bad = sorted(set(sequences) & set(DAVIS2016_VAL))
    if bad:
        raise ValueError(f"validation sequences {bad} must not be used for calibration")
    if len(sequences) < 2:
        raise ValueError("need at least 2 sequences (target-absent runs pair them)")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tracker = Tracker(load_for_tracking(checkpoint)[0], config)
        thrs = [float(t) for t in seg_thrs] if seg_thrs else [tracker.config.seg_thr]
        runs, absent = [], []
        for i, name in enumerate(sequences):
            runs.append(track_davis(tracker, name, resolution, max_frames, root, thrs))
            absent += _absent_scores(tracker, name, sequences[(i + 1) % len(sequences)],
                                     resolution, max_frames, root)
        # mean over sequences of the per-sequence mean J, for every threshold
        j_thr = np.mean([r["J_by_thr"].mean(0) for r in runs if len(r["J_by_thr"])], 0)
        k = int(np.argmax(j_thr))
        pos, off, ambiguous = [], [], 0
        for r in runs:
            for j, s in zip(r["J_by_thr"][:, k], r["scores"]):
                if j >= on_target:
                    pos.append(s)
                elif j < off_target:
                    off.append(s)
                else:
                    ambiguous += 1
    finally:
        torch.set_num_threads(old)
    res = best_threshold(np.array(pos), np.array(off + absent))
    res.update(n_on_target=len(pos), n_off_target=len(off), n_absent=len(absent),
               n_ambiguous=ambiguous, on_target_J=on_target, off_target_J=off_target,
               resolution=resolution, sequences=sequences, max_frames=max_frames,
               checkpoint=Path(checkpoint).name, tracker_config=config,
               J_per_sequence={n: float(r["J_by_thr"][:, k].mean()) for n, r in
                               zip(sequences, runs) if len(r["J_by_thr"])},
               score_quantiles={
                   "on_target": np.quantile(pos, [0.1, 0.5, 0.9]).tolist() if pos else [],
                   "lost": np.quantile(off + absent, [0.1, 0.5, 0.9]).tolist()},
               rule="seg_thr: max mean J; lost_score: max balanced accuracy: on target J >= on_target_J vs off target "
                    "(J < off_target_J) or target absent (frames of the next sequence)")
    if seg_thrs:
        res.update(seg_thr=thrs[k], seg_thr_grid=thrs, seg_thr_J=[float(j) for j in j_thr])
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default=None, help="JSON file (default: print only)")
    ap.add_argument("--sequences", nargs="+", default=None, help="default: all train ones")
    ap.add_argument("--resolution", default="240p")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--on-target", type=float, default=0.5)
    ap.add_argument("--off-target", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seg-thrs", type=float, nargs="*", default=list(SEG_THRS),
                    help="candidate mask thresholds (none given: keep the preset's seg_thr)")
    ap.add_argument("--data", default=None, help="dataset root (default: data_root())")
    a = ap.parse_args(argv)
    try:
        res = calibrate(Path(a.checkpoint), a.sequences, a.resolution, a.max_frames,
                        a.on_target, a.off_target, a.threads, a.data,
                        seg_thrs=a.seg_thrs)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2))
    if "seg_thr" in res:
        print("J by seg_thr: " + ", ".join(f"{t:g} {j:.4f}" for t, j in
                                           zip(res["seg_thr_grid"], res["seg_thr_J"]))
              + f" -> seg_thr {res['seg_thr']:g}")
    print(f"lost_score {res['lost_score']:.4f} | balanced accuracy "
          f"{res['balanced_accuracy']:.3f} (on target kept {res['tpr']:.3f}, lost flagged "
          f"{res['tnr']:.3f}) | {res['n_on_target']} on target, {res['n_off_target']} off, "
          f"{res['n_absent']} absent, {res['n_ambiguous']} ambiguous")
    return 0


if __name__ == "__main__":
    sys.exit(main())
