"""``siammask-edu eval`` and ``siammask-edu train``: the command-line wrappers of
:mod:`siammask_edu.metrics` and :mod:`siammask_edu.training`.

* ``siammask-edu eval davis --data ROOT --results DIR [--year 2016|2017] [--out DIR]``:
  semi-supervised DAVIS J and F (official statistics: mean, recall, decay) of a folder
  ``DIR/<sequence>/<frame>.png``;
* ``siammask-edu eval vot --data ROOT --results DIR [--out DIR]``: VOT accuracy, failures,
  robustness and EAO of result files ``DIR/<sequence>/<sequence>_001.txt`` (or
  ``DIR/baseline/<sequence>/…``), ground truth from ``ROOT/vot/<sequence>/groundtruth.txt``;
* ``siammask-edu train CONFIG [--resume [RUN_DIR]] [--data ROOT]``.

See book/10_measuring.py.
"""

from __future__ import annotations

import argparse
import json

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
        json.dump(payload, fh, indent=2, default=float)
    write_csv(folder / "per_sequence.csv", rows)
    print(f"wrote {folder / 'metrics.json'} and {folder / 'per_sequence.csv'}")


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
        print(f"{row['Sequence']:24}" + "".join(f"{row[k]:10.4f}" for k in keys))
    g = res.global_metrics
    print(f"{'(global)':24}" + "".join(f"{g[k]:10.4f}" for k in keys))
    print(f"J&F-Mean {g['J&F-Mean']:.4f}")
    _write_outputs(args.out, {"global": g, "per_sequence": res.per_object}, res.per_object)
    return 0


def _find_result_file(results: Path, seq: str) -> Path | None:
    for folder in (results / seq, results / "baseline" / seq):
        files = sorted(folder.glob(f"{seq}_*.txt")) if folder.is_dir() else []
        if files:
            return files[0]
    return None


def cmd_eval_vot(args: argparse.Namespace) -> int:
    from .metrics import vot
    from .paths import data_root

    root = data_root(args.data) / "vot"
    results_dir = Path(args.results)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    seqs = sorted(p.name for p in results_dir.iterdir() if p.is_dir() and p.name != "baseline")
    if (results_dir / "baseline").is_dir():
        seqs += sorted(p.name for p in (results_dir / "baseline").iterdir() if p.is_dir())
    results, gts, sizes, missing = {}, {}, {}, []
    for seq in seqs:
        f = _find_result_file(results_dir, seq)
        gt_file = root / seq / "groundtruth.txt"
        if f is None or not gt_file.is_file():
            missing.append(seq)
            continue
        results[seq] = vot.read_trajectory(f)
        gts[seq] = vot.read_trajectory(gt_file)
        first = sorted((root / seq / "color").glob("*.jpg"))
        img = cv2.imread(str(first[0])) if first else None
        if img is None:
            raise FileNotFoundError(f"no readable frame in {root / seq / 'color'}")
        sizes[seq] = (img.shape[1], img.shape[0])
    if missing:
        raise FileNotFoundError("no result file or ground truth for: " + ", ".join(missing))
    if not results:
        raise ValueError(f"no result files under {results_dir}")
    r = vot.evaluate_vot(results, gts, sizes)
    print(f"{'sequence':16}{'accuracy':>10}{'failures':>10}{'frames':>8}")
    for row in r["per_sequence"]:
        print(f"{row['sequence']:16}{row['accuracy']:10.4f}{row['failures']:10d}"
              f"{row['n_frames']:8d}")
    eao_txt = ", ".join(f"{k} {v:.4f}" for k, v in r["eao"].items())
    print(f"Accuracy {r['accuracy']:.4f} | Lost {r['lost_number']} | "
          f"Robustness {r['robustness']:.3f} per 100 frames | EAO {eao_txt}")
    payload = {k: v for k, v in r.items() if k != "curve"}
    payload["curve"] = [float(c) for c in r["curve"]]
    _write_outputs(args.out, payload, r["per_sequence"])
    return 0


__all__ = ["add_eval_parser", "add_train_parser"]
