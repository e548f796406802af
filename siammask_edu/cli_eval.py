"""``siammask-edu eval`` and ``siammask-edu train``: the command-line wrappers of
:mod:`siammask_edu.metrics` and :mod:`siammask_edu.training`.

* ``siammask-edu eval davis --data ROOT --results DIR [--year 2016|2017] [--out DIR]``:
  semi-supervised DAVIS J and F (official statistics: mean, recall, decay) of a folder
  ``DIR/<sequence>/<frame>.png``;
* ``siammask-edu eval vot --data ROOT --results DIR [--sequences A,B] [--out DIR]``: VOT
  accuracy, failures, robustness and EAO of result files ``DIR/<sequence>/<sequence>_001.txt``
  (or ``DIR/baseline/<sequence>/…``), ground truth from ``ROOT/vot/<sequence>/groundtruth.txt``,
  for the sequences of ``ROOT/vot/list.txt`` (or ``--sequences``);
* ``siammask-edu benchmark davis|vot [--data ROOT] [--model lite|PATH] [--precision P]
  --out DIR``: runs the tracker over the sequences and evaluates it (DAVIS: one target per
  object from the first annotation's bounding box, all objects of a sequence tracked in one
  batched forward pass per frame (:class:`~siammask_edu.multi.MultiTracker`), masks merged
  with the arg-max rule and written as palette PNGs ``DIR/masks/<sequence>/<frame>.png``;
  VOT: the supervised reset protocol, ``DIR/results/baseline/<sequence>/<sequence>_001.txt``),
  then writes ``metrics.json`` (every number, plus versions, device, precision, seed, the
  model's sha256 and the tracker's hyper-parameters), ``per_sequence.csv``, ``per_sequence.txt`` and a plot
  (``jf_per_sequence.png`` or ``eao_curve.png``). ``--max-frames N`` keeps the first N frames
  of every sequence (the evaluation then treats them as the whole sequence);

Frames pair with their ground truth by identity, never by position: DAVIS ``00007.jpg`` with
the annotation ``00007.png``, VOT ``color/00000007.jpg`` with line 7 of ``groundtruth.txt``,
result line i with ground-truth line i. A frame without ground truth, ground truth without
its frame, a result file of another length: an error naming them. Input checks look at
everything first and report every problem in one error, grouped by kind (missing, extra,
wrong size, wrong mode, wrong length, unreadable). No metric is printed as ``nan``: one
without a value reads ``n/a``, with the reason (EAO needs sequences that reach its interval,
VOT2018: 100 frames), and is ``null`` in ``metrics.json``;
* ``siammask-edu train CONFIG [--resume [RUN_DIR]] [--data ROOT]``.

See book/10_measuring.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import cv2


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``eval davis`` and ``eval vot``."""
    p = subparsers.add_parser("eval", help="evaluate saved results (DAVIS J/F, VOT A/R/EAO)")
    bench = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    d = bench.add_parser("davis", help="DAVIS J and F of a folder of PNG masks")
    d.add_argument("--data", help="dataset root (holding davis2016/ or davis2017/); "
                                  "default: siammask_edu.data_root()")
    d.add_argument("--results", required=True, help="folder <sequence>/<frame>.png")
    d.add_argument("--year", type=int, choices=(2016, 2017), default=2016)
    d.add_argument("--resolution", default="480p")
    d.add_argument("--sequences", help="comma-separated names (default: ImageSets val list)")
    d.add_argument("--keep-last", action="store_true",
                   help="keep the last frame (the official protocol drops it)")
    d.add_argument("--out", help="write metrics.json and per_sequence.csv here")
    d.set_defaults(func=cmd_eval_davis)
    v = bench.add_parser("vot", help="VOT accuracy, robustness and EAO of result files")
    v.add_argument("--data", help="dataset root (holding vot/<sequence>/); "
                                  "default: siammask_edu.data_root()")
    v.add_argument("--results", required=True,
                   help="folder <sequence>/<sequence>_001.txt (or baseline/<sequence>/...)")
    v.add_argument("--sequences", help="comma-separated names (default: ROOT/vot/list.txt, "
                                       "else every folder with a groundtruth.txt)")
    v.add_argument("--out", help="write metrics.json and per_sequence.csv here")
    v.set_defaults(func=cmd_eval_vot)
    return p


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train``."""
    p = subparsers.add_parser("train", help="train a SiamMask model from a run file")
    p.add_argument("config", help="run file, e.g. configs/train_lite.json")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                   help="continue the run from its last checkpoint")
    p.add_argument("--data", help="dataset root (default: siammask_edu.data_root())")
    p.set_defaults(func=cmd_train)
    return p


def cmd_train(args: argparse.Namespace) -> int:
    from .training import train_main

    return train_main(args.config, resume=args.resume, data=args.data)


def _write_outputs(out: str | None, payload: dict, rows: list[dict]) -> None:
    if not out:
        return
    from .io import atomic_open
    from .metrics.davis import write_csv

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / "metrics.json", "w") as fh:
        json.dump(_json_clean(payload), fh, indent=2, allow_nan=False)
    write_csv(folder / "per_sequence.csv", rows)
    print(f"wrote {folder / 'metrics.json'} and {folder / 'per_sequence.csv'}")


def _json_clean(o):
    """Strict JSON: numpy scalars as Python numbers, NaN (no value) as null."""
    if isinstance(o, dict):
        return {str(k): _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, str):
        o = o.item()
    return None if isinstance(o, float) and math.isnan(o) else o


def _num(v, spec: str = ".4f", width: int = 0) -> str:
    """A metric as text; ``n/a`` (never ``nan``) where it has no value."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return f"{'n/a':>{width}}"
    return f"{v:{width}{spec}}"


def _eao_summary(r: dict) -> tuple[str, str | None]:
    """The EAO part of the VOT summary line and, where an interval has no value, why.

    EAO averages the expected-overlap curve over an interval of sequence lengths (VOT2018:
    100-356 frames); sequences shorter than its start give no EAO (the official code's NaN).
    """
    from .metrics.vot import EAO_INTERVALS

    known = {k: v for k, v in r["eao"].items() if not math.isnan(v)}
    absent = [k for k in r["eao"] if k not in known]
    parts = [f"{k} {v:.4f}" for k, v in known.items()]
    note = None
    if absent:
        longest = len(r["curve"])
        need = ", ".join(f"{k} from {EAO_INTERVALS[k][0]} frames" for k in absent
                         if k in EAO_INTERVALS)
        note = (f"EAO needs sequences reaching its interval ({need}); the longest sequence "
                f"here has {longest} frames")
    text = "EAO " + ", ".join(parts) if parts else "EAO n/a"
    if absent and parts:
        text += f"; {', '.join(absent)} n/a"
    return text, note


def cmd_eval_davis(args: argparse.Namespace) -> int:
    from .metrics import davis
    from .paths import data_root

    root = data_root(args.data)
    seqs = args.sequences.split(",") if args.sequences else None
    res = davis.evaluate_davis(args.results, root, year=args.year, sequences=seqs,
                               resolution=args.resolution, exclude_last=not args.keep_last)
    keys = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    print(f"{'sequence':24}" + "".join(f"{k:>10}" for k in keys))
    for row in res.per_object:
        print(f"{row['Sequence']:24}" + "".join(_num(row[k], ".4f", 10) for k in keys))
    g = res.global_metrics
    print(f"{'(global)':24}" + "".join(_num(g[k], ".4f", 10) for k in keys))
    print(f"J&F-Mean {_num(g['J&F-Mean'])}")
    _write_outputs(args.out, {"global": g, "per_sequence": res.per_object}, res.per_object)
    return 0


def _find_result_file(results: Path, seq: str) -> Path | None:
    for folder in (results / seq, results / "baseline" / seq):
        files = sorted(folder.glob(f"{seq}_*.txt")) if folder.is_dir() else []
        if files:
            return files[0]
    return None


def _vot_sequences(root: Path, given: str | None) -> list[str]:
    """``--sequences``, else ``ROOT/list.txt``, else every folder with a ``groundtruth.txt``."""
    if given:
        return [x for x in given.split(",") if x]
    if (root / "list.txt").is_file():
        return [ln.strip() for ln in (root / "list.txt").read_text().splitlines()
                if ln.strip()]
    return sorted(p.name for p in root.iterdir() if (p / "groundtruth.txt").is_file()) \
        if root.is_dir() else []


def _read_vot_file(path: Path, shown: str, problems) -> list | None:
    """The regions of a VOT text file; an unreadable line is a problem (all of them)."""
    from .metrics import vot

    out, bad = [], False
    with open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(vot.parse_region(line))
            except ValueError:
                problems.add("unreadable", shown, f" line {i}",
                             f"{line.strip()[:40]!r} is not a VOT region")
                bad = True
    return None if bad else out


def _load_vot_sequence(root: Path, seq: str, problems) -> tuple[list, list] | None:
    """``(frames paired with the ground truth by number, ground truth)`` of one sequence;
    its problems (no ground truth, unreadable lines, frames missing, extra, unnumbered)
    go to ``problems``, and None comes back."""
    from . import io
    from .metrics.inputs import pair_by_number

    gt_file = root / seq / "groundtruth.txt"
    if not gt_file.is_file():
        problems.add("missing", f"{seq}/groundtruth.txt", "", f"no ground truth in {root}")
        return None
    gt = _read_vot_file(gt_file, f"{seq}/groundtruth.txt", problems)
    color = root / seq / "color"
    folder = color if color.is_dir() else root / seq
    before = len(problems)
    frames = pair_by_number(io.list_images(folder), len(gt or []),
                            f"{seq}/{'color/' if color.is_dir() else ''}", problems)
    if gt is None or len(problems) > before:
        return None
    if not frames:
        problems.add("missing", f"{seq}/", "", "no frames and an empty ground truth")
        return None
    return frames, gt


def cmd_eval_vot(args: argparse.Namespace) -> int:
    from .metrics import vot
    from .metrics.inputs import Problems
    from .paths import data_root

    root = data_root(args.data) / "vot"
    results_dir = Path(args.results)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    seqs = _vot_sequences(root, args.sequences)
    if not seqs:
        raise ValueError(f"empty dataset: no VOT sequences under {root}")
    problems = Problems()
    if not args.sequences:  # results the dataset has no ground truth for
        found = {p.name for d in (results_dir, results_dir / "baseline") if d.is_dir()
                 for p in d.iterdir() if p.is_dir() and p.name != "baseline"}
        for name in sorted(found - set(seqs)):
            if _find_result_file(results_dir, name) is not None:
                problems.add("extra", f"{name}/", "",
                             f"no ground truth {root / name / 'groundtruth.txt'} "
                             "(or pass --sequences)" if not (root / name).is_dir()
                             else f"not in {root / 'list.txt'} (pass --sequences)")
    results, gts, sizes = {}, {}, {}
    for seq in seqs:
        f = _find_result_file(results_dir, seq)
        loaded = _load_vot_sequence(root, seq, problems)
        if f is None:
            problems.add("missing", f"{seq}/{seq}_001.txt", "",
                         f"no result file in {results_dir} (or baseline/)")
            continue
        shown = f"{f.parent.name}/{f.name}"
        traj = _read_vot_file(f, shown, problems)
        if loaded is None or traj is None:
            continue
        frames, gt = loaded
        if len(traj) != len(gt):
            problems.add("wrong length", shown, "",
                         f"{len(traj)} lines for {len(gt)} ground-truth frames")
            continue
        img = cv2.imread(str(frames[0]))
        if img is None:
            problems.add("unreadable", f"{seq}/", frames[0].name, "not an image")
            continue
        results[seq], gts[seq], sizes[seq] = traj, gt, (img.shape[1], img.shape[0])
    problems.raise_if_any(f"results in {results_dir} do not match the ground truth in {root}")
    r = vot.evaluate_vot(results, gts, sizes)
    print(f"{'sequence':16}{'accuracy':>10}{'failures':>10}{'frames':>8}")
    for row in r["per_sequence"]:
        print(f"{row['sequence']:16}{_num(row['accuracy'], '.4f', 10)}{row['failures']:10d}"
              f"{row['n_frames']:8d}")
    eao_txt, eao_note = _eao_summary(r)
    print(f"Accuracy {_num(r['accuracy'])} | Lost {r['lost_number']} | "
          f"Robustness {r['robustness']:.3f} per 100 frames | {eao_txt}")
    if eao_note:
        print(eao_note)
    payload = {k: v for k, v in r.items() if k != "curve"}
    payload["curve"] = [float(c) for c in r["curve"]]
    if eao_note:
        payload["eao_note"] = eao_note
    _write_outputs(args.out, payload, r["per_sequence"])
    return 0


__all__ = ["add_benchmark_parser", "add_eval_parser", "add_train_parser", "load_tracker",
           "run_benchmark_davis", "run_benchmark_vot"]


# -- benchmark -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return v


def add_benchmark_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``benchmark davis`` and ``benchmark vot``."""
    p = subparsers.add_parser("benchmark", help="run the tracker on DAVIS or VOT and evaluate")
    bench = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, hlp in (("davis", "semi-supervised DAVIS: masks, J and F"),
                      ("vot", "VOT supervised (reset) experiment: A, R, EAO")):
        b = bench.add_parser(name, help=hlp)
        b.add_argument("--data", help="dataset root (default: siammask_edu.data_root())")
        b.add_argument("--model", default="lite",
                       help="'lite' (the shipped SiamMask-Lite weights) or a checkpoint path")
        b.add_argument("--out", required=True, help="output folder")
        b.add_argument("--sequences", help="comma-separated sequence names")
        b.add_argument("--max-frames", type=_positive_int, metavar="N",
                       help="use only the first N frames of every sequence")
        b.add_argument("--config", default=name,
                       help=f"tracker preset (default: {name}; also vot-ld, base)")
        b.add_argument("--device", default="cpu")
        b.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                       help="network arithmetic: fp32 (default, exact), bf16 (autocast), "
                       "fp16 (CUDA only); see Tracker(precision=...)")
        b.add_argument("--seed", type=int, default=0, help="torch/numpy seed (recorded)")
        b.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "davis":
            b.add_argument("--year", type=int, choices=(2016, 2017), default=2016)
            b.add_argument("--resolution", default="480p")
            b.add_argument("--keep-last", action="store_true",
                           help="keep the last frame (the official protocol drops it)")
            b.set_defaults(func=cmd_benchmark_davis)
        else:
            b.set_defaults(func=cmd_benchmark_vot)
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_tracker(spec: str, config: str = "davis", device: str = "cpu",
                 precision: str = "fp32"):
    """The tracker of ``--model``: ``"lite"`` (``Tracker.from_pretrained("lite")``, the
    shipped SiamMask-Lite weights with their calibrated settings) or a checkpoint path
    (:meth:`~siammask_edu.Tracker.from_checkpoint`: released or our own files), with
    ``precision`` (``"fp32"``, ``"bf16"``, ``"fp16"``: see :class:`~siammask_edu.Tracker`).

    Returns:
        ``(tracker, info)``: a :class:`~siammask_edu.Tracker` (model in eval mode on
        ``device``), and ``{"spec", "path", "sha256", "sha256_of"}`` (the sha256 of the
        checkpoint file; of the concatenated weights, ``sha256_of == "weights"``, when the
        file cannot be read back).

    Raises:
        ValueError: ``lite`` in a version without ``Tracker.from_pretrained``; an invalid
            ``precision`` or one the device does not support (``fp16`` on a CPU).
        FileNotFoundError: a missing checkpoint, or ``lite`` weights absent from this build.

    See book/10_measuring.py.
    """
    import numpy as np

    from . import tracker as tracker_mod

    Tracker = tracker_mod.Tracker
    tracker_mod.check_precision(precision, device)
    path = None
    if spec == "lite":
        if not hasattr(Tracker, "from_pretrained"):
            raise ValueError("--model lite: this version ships no pretrained SiamMask-Lite "
                             "weights (Tracker.from_pretrained is missing); pass a checkpoint "
                             "path instead")
        tracker = Tracker.from_pretrained("lite", config=config, device=device,
                                          precision=precision)
        locate = getattr(tracker_mod, "pretrained_path", None)
        if locate is not None:
            try:
                from importlib import resources

                with resources.as_file(locate("lite", None)) as p:
                    path = Path(p)
                    sha = _sha256(path) if path.is_file() else None
            except (OSError, ValueError, TypeError):
                path, sha = None, None
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"--model {spec}: no such checkpoint file")
        tracker = Tracker.from_checkpoint(path, config=config, device=device,
                                          precision=precision)
        sha = _sha256(path)
    info = {"spec": spec, "path": str(path) if path is not None else None}
    if path is not None and sha is not None:
        info["sha256"], info["sha256_of"] = sha, "file"
    else:
        h = hashlib.sha256()
        for k, v in tracker.model.state_dict().items():
            h.update(k.encode())
            h.update(np.ascontiguousarray(v.detach().cpu().float().numpy()).tobytes())
        info["sha256"], info["sha256_of"] = h.hexdigest(), "weights"
    return tracker, info


def _meta(args, model_info: dict, tracker, seconds: float, n_frames: int) -> dict:
    import dataclasses

    import cv2
    import numpy as np
    import torch

    from . import __version__

    return {
        "command": "siammask-edu benchmark " + " ".join(sys.argv[2:]) if sys.argv[1:2] == [
            "benchmark"] else "siammask-edu benchmark " + args.benchmark,
        "versions": {"siammask_edu": __version__, "python": platform.python_version(),
                     "torch": torch.__version__, "numpy": np.__version__,
                     "opencv": cv2.__version__, "platform": platform.platform()},
        "device": str(tracker.device), "precision": tracker.precision,
        "torch_threads": torch.get_num_threads(),
        "seed": args.seed, "model": model_info,
        "hyper_parameters": dataclasses.asdict(tracker.config),
        "max_frames": args.max_frames, "seconds": seconds, "frames_tracked": n_frames,
        "fps": n_frames / seconds if seconds > 0 else None,
    }


def _table(rows: list[dict], keys: list[str], first: str) -> str:
    def fmt(v):
        return _num(v, ".4f", 11) if isinstance(v, float) or v is None else f"{v!s:>11}"

    lines = [f"{first:24}" + "".join(f"{k:>11}" for k in keys)]
    lines += [f"{r[first]!s:24}" + "".join(fmt(r[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def _progress(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=quiet, file=sys.stderr)


def _prepare(args):
    import numpy as np
    import torch

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    return load_tracker(args.model, args.config, args.device,
                        getattr(args, "precision", "fp32"))


def run_benchmark_davis(args: argparse.Namespace) -> dict:
    """``siammask-edu benchmark davis``: track, write palette PNGs, evaluate (J, F), report.

    One target per object of the first annotation (2016: the binarised annotation is one
    object), initialised with the bounding rectangle of its pixels (``cv2.boundingRect``,
    the released DAVIS driver's rule). The released driver runs one tracker per object;
    here the objects of a sequence share one :class:`~siammask_edu.multi.MultiTracker`
    (their N search crops in one batched forward pass per frame, each target keeping its
    own state; the same results up to the float rounding of batched convolutions, see
    :mod:`siammask_edu.multi`). Per frame the objects' ``mask_prob`` maps are merged with
    the arg-max rule (:func:`~siammask_edu.io.merge_objects`, threshold ``seg_thr``).
    Frame 0 is written as the given annotation. With ``--max-frames`` the evaluation runs on
    a view of the ground truth cut to the same frames (links in ``DIR/_groundtruth``).

    Returns:
        The payload written to ``metrics.json``.

    See book/10_measuring.py.
    """
    import cv2
    import numpy as np

    from . import io
    from .metrics import davis
    from .multi import MultiTracker
    from .paths import data_root

    root = data_root(args.data)
    base = davis._davis_folder(root, args.year)
    out = Path(args.out)
    anno, jpeg = base / "Annotations" / args.resolution, base / "JPEGImages" / args.resolution
    if args.sequences:
        seqs = [s for s in args.sequences.split(",") if s]
    else:
        listed = davis._list_sequences(base, args.year, "val", args.resolution)
        seqs = [s for s in listed if (anno / s).is_dir() and (jpeg / s).is_dir()]
        absent = [s for s in listed if s not in seqs]
        if absent:
            print(f"note: {len(absent)} listed val sequence(s) are not in {base} and are "
                  f"skipped", file=sys.stderr)
    if not seqs:
        raise ValueError(f"empty dataset: no DAVIS sequences under {base}")
    from .metrics.inputs import Problems, pair_by_name

    plan, problems = {}, Problems()
    for seq in seqs:  # frame 00007.jpg goes with annotation 00007.png, never by position
        frames = io.list_images(jpeg / seq) if (jpeg / seq).is_dir() else []
        gts = sorted((anno / seq).glob("*.png"))
        if not frames or not gts:
            problems.add("missing", f"{seq}/", "", f"no frames in {jpeg / seq}" if not frames
                         else f"no annotations in {anno / seq}")
            continue
        pairs = pair_by_name(frames, gts, f"{seq}/", problems)
        plan[seq] = ([f for f, _ in pairs], [g for _, g in pairs])
    problems.raise_if_any(f"the frames and annotations under {base} do not pair up "
                          "(frame NNNNN.jpg goes with annotation NNNNN.png)")
    for seq, (frames, gts) in plan.items():
        n = min(len(frames), args.max_frames or len(frames))
        if n < 3 - args.keep_last:
            raise ValueError(f"sequence {seq}: {n} frame(s) leave nothing to evaluate")
        plan[seq] = (frames[:n], gts[:n])
    tracker, info = _prepare(args)
    thr = tracker.config.seg_thr
    bar = _progress(sum(len(f) - 1 for f, _ in plan.values()), "benchmark davis", args.quiet)
    t0, n_tracked = time.perf_counter(), 0
    for seq, (frames, gts) in plan.items():
        first = davis.read_mask_png(gts[0])
        labels0 = (first > 0).astype(np.uint8) if args.year == 2016 else np.where(
            first == 255, 0, first)
        ids = [int(k) for k in np.unique(labels0) if k > 0]
        if not ids:
            raise ValueError(f"sequence {seq}: the first annotation {gts[0]} is empty")
        f0 = io.read_image(frames[0])
        multi = MultiTracker(tracker.model, tracker.config, tracker.device,
                             precision=tracker.precision)
        multi.init(f0, [cv2.boundingRect((labels0 == k).astype(np.uint8)) for k in ids])
        io.write_palette_png(_mkdir(out / "masks" / seq) / gts[0].name, labels0)
        for frame_path, gt_path in zip(frames[1:], gts[1:]):
            frame = io.read_image(frame_path)
            probs = [r.mask_prob if r.mask_prob is not None else r.mask.astype(np.float32)
                     for r in multi.track(frame)]
            lab = io.merge_objects(np.stack(probs), thr)
            lab = np.asarray(ids, np.uint8)[lab.astype(np.int64) - 1] * (lab > 0)
            io.write_palette_png(out / "masks" / seq / gt_path.name, lab.astype(np.uint8))
            n_tracked += 1
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    gt_root = base
    if args.max_frames:
        gt_root = out / "_groundtruth"
        for seq, (_, gts) in plan.items():
            d = gt_root / "Annotations" / args.resolution / seq
            d.mkdir(parents=True, exist_ok=True)
            for g in gts:
                link = d / g.name
                if not link.exists():
                    try:
                        os.symlink(g.resolve(), link)
                    except OSError:
                        link.write_bytes(g.read_bytes())
    res = davis.evaluate_davis(out / "masks", gt_root, year=args.year, sequences=list(plan),
                               resolution=args.resolution, exclude_last=not args.keep_last)
    keys = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    g = res.global_metrics
    table = _table(res.per_object + [{"Sequence": "(global)", **g}], keys, "Sequence")
    print(table)
    print(f"J&F-Mean {_num(g['J&F-Mean'])} | {n_tracked} frames in {seconds:.1f} s")
    payload = {"benchmark": "davis", "year": args.year, "global": g,
               "per_sequence": res.per_object,
               "per_frame": {f"{s}_{k}": {"J": j.tolist(), "F": f.tolist()}
                             for (s, k), (j, f) in res.per_frame.items()},
               "meta": _meta(args, info, tracker, seconds, n_tracked)}
    _write_benchmark(out, payload, res.per_object, table)
    _plot_davis(out / "jf_per_sequence.png", res.per_object)
    return payload


def run_benchmark_vot(args: argparse.Namespace) -> dict:
    """``siammask-edu benchmark vot``: the supervised reset protocol
    (:func:`~siammask_edu.metrics.vot.run_supervised`), VOT result files, A / R / EAO.

    Returns:
        The payload written to ``metrics.json``.

    See book/10_measuring.py.
    """
    from . import io
    from .metrics import vot
    from .paths import data_root

    root = data_root(args.data) / "vot"
    out = Path(args.out)
    if args.sequences:
        seqs = [s for s in args.sequences.split(",") if s]
    elif (root / "list.txt").is_file():
        seqs = [ln.strip() for ln in (root / "list.txt").read_text().splitlines() if ln.strip()]
    else:
        seqs = sorted(p.name for p in root.iterdir() if (p / "groundtruth.txt").is_file()) \
            if root.is_dir() else []
    if not seqs:
        raise ValueError(f"empty dataset: no VOT sequences under {root}")
    from .metrics.inputs import Problems

    plan, problems = {}, Problems()
    for seq in seqs:  # image 00000007.jpg goes with ground-truth line 7, never by position
        loaded = _load_vot_sequence(root, seq, problems)
        if loaded is not None:
            plan[seq] = loaded
    problems.raise_if_any(f"the frames and ground truth under {root} do not pair up "
                          "(image number i goes with groundtruth.txt line i)")
    for seq, (frames, gt) in plan.items():
        n = min(len(frames), args.max_frames or len(frames))
        if n < 2:
            raise ValueError(f"sequence {seq}: {n} frame(s) leave nothing to track")
        plan[seq] = (frames[:n], gt[:n])
    tracker, info = _prepare(args)
    bar = _progress(sum(len(f) for f, _ in plan.values()), "benchmark vot", args.quiet)
    results, sizes, t0 = {}, {}, time.perf_counter()

    def reader(paths):
        for p in paths:
            img = io.read_image(p)
            bar.update(1)
            yield img

    for seq, (frames, gt) in plan.items():
        h, w = io.read_image(frames[0]).shape[:2]
        sizes[seq] = (w, h)
        traj = vot.run_supervised(tracker, reader(frames), gt)
        results[seq] = traj
        vot.write_trajectory(_mkdir(out / "results" / "baseline" / seq) / f"{seq}_001.txt",
                             traj)
    bar.close()
    seconds = time.perf_counter() - t0
    n_tracked = sum(1 for t in results.values() for r in t if r.size > 1)
    r = vot.evaluate_vot(results, {s: g for s, (_, g) in plan.items()}, sizes)
    table = _table(r["per_sequence"], ["accuracy", "failures", "robustness", "n_frames"],
                   "sequence")
    eao_txt, eao_note = _eao_summary(r)
    print(table)
    print(f"Accuracy {_num(r['accuracy'])} | Lost {r['lost_number']} | Robustness "
          f"{r['robustness']:.3f} per 100 frames | {eao_txt} | {n_tracked} frames "
          f"tracked in {seconds:.1f} s")
    notes = []
    if math.isnan(r["accuracy"]):
        notes.append("Accuracy n/a: every frame lies in the burn-in (10 frames) after an "
                     "initialisation")
    if eao_note:
        notes.append(eao_note)
    for note in notes:
        print(note)
    payload = {"benchmark": "vot", **{k: v for k, v in r.items() if k != "curve"},
               "curve": [float(c) for c in r["curve"]],
               "eao_intervals": {k: list(vot.EAO_INTERVALS[k]) for k in r["eao"]},
               "meta": _meta(args, info, tracker, seconds, n_tracked)}
    if eao_note:
        payload["eao_note"] = eao_note
    _write_benchmark(out, payload, r["per_sequence"], table)
    _plot_eao(out / "eao_curve.png", r["curve"], r["eao"])
    return payload


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _write_benchmark(out: Path, payload: dict, rows: list[dict], table: str) -> None:
    from .io import atomic_open
    from .metrics.davis import write_csv

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "metrics.json", "w") as fh:  # NaN (no value) -> null
        json.dump(_json_clean(payload), fh, indent=2, allow_nan=False)
    write_csv(out / "per_sequence.csv", rows)
    (out / "per_sequence.txt").write_text(table + "\n")


def _plot_davis(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["Sequence"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(rows) + 2), 3.2))
    ax.bar(x - 0.2, [r["J-Mean"] for r in rows], 0.4, label="J (region)")
    ax.bar(x + 0.2, [r["F-Mean"] for r in rows], 0.4, label="F (boundary)")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean over frames")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_eao(path: Path, curve, eaos: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .metrics.vot import EAO_INTERVALS

    c = np.asarray(curve)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(np.arange(1, len(c) + 1), c, lw=1.5)
    lo, hi = EAO_INTERVALS["VOT2018"]
    ax.axvspan(lo, hi, color="0.85", label=f"VOT2018 interval {lo}-{hi}")
    ax.set_xlabel("sequence length N_s (frames)")
    ax.set_ylabel("expected average overlap")
    ax.set_title(", ".join(f"EAO {k} {_num(v, '.3f')}" for k, v in eaos.items()), fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cmd_benchmark_davis(args: argparse.Namespace) -> int:
    run_benchmark_davis(args)
    print(f"wrote {args.out}")
    return 0


def cmd_benchmark_vot(args: argparse.Namespace) -> int:
    run_benchmark_vot(args)
    print(f"wrote {args.out}")
    return 0
