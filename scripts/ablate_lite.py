"""Short-budget ablation of training recipe v2: train each ``configs/ablation/*.json``, then
measure mean J on DAVIS-2016 *train* sequences held out from that run.

Usage (from the checkout root)::

    python scripts/ablate_lite.py [CONFIG.json ...] [--out runs/ablation/results]
        [--data ROOT] [--threads 1] [--eval-only] [--max-steps N]

Without configs, every ``configs/ablation/*.json`` runs, in name order. Each run file is a
normal run file (:func:`siammask_edu.training.load_run_config`) with two more keys:
``heldout`` (the DAVIS-2016 train sequences it is evaluated on; its DAVIS source must list
its training sequences explicitly and leave these out) and ``description``. All share the
seed, the 600-step budget (batch 16) and the held-out fold (car-turn, dance-jump, elephant,
mallard-water, soccerball), and differ from ``00_baseline`` by one change, except
``07_v2_all`` (all of them).

* Training always resumes (``train_run(resume=True)``): a finished run is skipped, an
  interrupted one continues from its ``last.pth`` exactly, so the script can be stopped
  and restarted at any time. Runs use ``--threads`` (default 1) CPU threads and no
  DataLoader worker, whatever the config says.
* Evaluation: the base-stage ``final.pth`` (its untrained refinement dropped, see
  ``export_lite.load_for_tracking``) in the ``davis`` tracker preset, started from the box
  of each held-out sequence's first 240p annotation; J over frames 1..T-2 (the official
  ``[1:-1]``), averaged per sequence, then over sequences. Cached in
  ``<run_dir>/heldout_eval.json`` (keyed by the checkpoint's step).
* Output: ``<out>.md`` (a table: J per run and sequence, its difference to the baseline,
  steps, training wall time, last logged losses) and ``<out>.json``.

The DAVIS-2016 validation sequences are refused everywhere (training and evaluation).
On one thread of a shared 2-core machine (load average 5-6), measured on 4 steps at
batch 16: a frozen-backbone step took 1.6-3.3 s, an unfrozen one (blocks 8-10) 4-10 s;
about 20-30 min per frozen run, 40-50 min for the two runs that unfreeze at step 300,
plus under a minute of evaluation each: 3-4 h for the eight runs.

See book/09_training_lite.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_lite import load_for_tracking, track_davis

from siammask_edu import Tracker
from siammask_edu.checkpoint import read_state_file
from siammask_edu.datasets import DAVIS2016_VAL
from siammask_edu.training import load_run_config, train_run

ROOT = Path(__file__).resolve().parents[1]


def check_fold(run: dict, heldout: list[str]) -> None:
    """Refuse a run whose training data could contain a held-out or a validation sequence.

    Raises:
        ValueError: no ``heldout``, a val sequence among them, a DAVIS source without an
            explicit ``sequences`` list, or a held-out sequence in it.
    """
    if not heldout:
        raise ValueError(f"{run['name']}: the run file needs a 'heldout' list")
    bad = sorted(set(heldout) & set(DAVIS2016_VAL))
    if bad:
        raise ValueError(f"{run['name']}: validation sequences {bad} must not be used")
    for cfg in run["stages"]:
        for s in cfg.data:
            if s.get("type") != "davis":
                continue
            seqs = s.get("sequences")
            if not seqs:
                raise ValueError(f"{run['name']}: its DAVIS source must list its sequences "
                                 "(the held-out fold left out)")
            leak = sorted(set(seqs) & set(heldout))
            if leak:
                raise ValueError(f"{run['name']}: held-out sequences {leak} are in its "
                                 "training data")


def evaluate(checkpoint: Path, heldout: list[str], data_root=None, threads: int = 1) -> dict:
    """Mean J of ``checkpoint`` on the held-out sequences (240p, ``davis`` preset).

    Returns:
        dict: ``J`` (mean over sequences), ``J_per_sequence``, ``frames``, ``seconds``.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tracker = Tracker(load_for_tracking(checkpoint)[0], "davis")
        per, frames, secs = {}, 0, 0.0
        for name in heldout:
            r = track_davis(tracker, name, resolution="240p", data_root=data_root)
            per[name] = float(np.mean(r["J_per_frame"][:-1]))  # frames 1..T-2
            frames += r["frames"]
            secs += r["seconds"]
    finally:
        torch.set_num_threads(old)
    return {"J": float(np.mean(list(per.values()))), "J_per_sequence": per,
            "frames": frames, "seconds": secs}


def _log_summary(stage_dir: Path) -> dict:
    path = stage_dir / "log.csv"
    if not path.is_file():
        return {}
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    wall, prev = 0.0, 0.0
    for r in rows:  # elapsed_s restarts at 0 in each resumed segment
        e = float(r["elapsed_s"])
        if e < prev:
            wall += prev
        prev = e
    last = rows[-1]
    return {"wall_s": wall + prev, "last_step": int(last["step"]),
            "last_loss": {k: float(last[k]) for k in ("total", "score", "box", "mask",
                                                        "mask_iou") if last.get(k)}}


def run_one(path: Path, data_root=None, threads: int = 1, eval_only: bool = False,
            max_steps: int | None = None) -> dict:
    """Train (resuming) and evaluate one ablation run file; returns its table row."""
    raw = json.loads(path.read_text())
    run = load_run_config(path)
    heldout = list(raw.get("heldout") or [])
    check_fold(run, heldout)
    run["stages"] = [c.replace(threads=threads, num_workers=0) for c in run["stages"]]
    run_dir = Path(run["run_dir"])
    if not run_dir.is_absolute():
        run_dir = ROOT / run_dir
    run["run_dir"] = str(run_dir)
    final = run_dir / f"{len(run['stages']) - 1}_{run['stages'][-1].stage}" / "final.pth"
    if not eval_only:
        t0 = time.time()
        print(f"[{path.stem}] training in {run_dir}", flush=True)
        train_run(run, resume=True, data_root=data_root, progress=True, max_steps=max_steps)
        print(f"[{path.stem}] {time.time() - t0:.0f} s this call", flush=True)
    row = {"run": path.stem, "description": raw.get("description", ""),
           "heldout": heldout, "steps": run["stages"][-1].total_steps,
           "log": _log_summary(final.parent)}
    if not final.is_file():
        row["status"] = "not finished"
        return row
    step = int(read_state_file(final).get("extra", {}).get("step", -1))
    cache = run_dir / "heldout_eval.json"
    res = json.loads(cache.read_text()) if cache.is_file() else None
    if res is None or res.get("step") != step or res.get("heldout") != heldout:
        print(f"[{path.stem}] evaluating on {heldout}", flush=True)
        res = dict(evaluate(final, heldout, data_root, threads), step=step, heldout=heldout)
        cache.write_text(json.dumps(res, indent=2))
    row.update(status="done", **{k: res[k] for k in ("J", "J_per_sequence", "frames",
                                                      "seconds")})
    return row


def write_table(rows: list[dict], out: Path) -> None:
    """``<out>.json`` (the rows) and ``<out>.md`` (a table, ΔJ against ``*baseline*``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    base = next((r.get("J") for r in rows if "baseline" in r["run"] and "J" in r), None)
    seqs = next((r["heldout"] for r in rows if r.get("heldout")), [])
    head = ["run", "change", "mean J", "ΔJ vs baseline", *seqs, "steps", "train wall",
            "last loss (total / score / box / mask)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        j = r.get("J")
        d = "" if j is None or base is None else f"{j - base:+.3f}"
        per = [f"{r['J_per_sequence'][s]:.3f}" if "J_per_sequence" in r else "" for s in seqs]
        lg = r.get("log", {})
        wall = f"{lg['wall_s'] / 60:.0f} min" if "wall_s" in lg else ""
        ll = lg.get("last_loss", {})
        loss = " / ".join(f"{ll[k]:.3f}" for k in ("total", "score", "box", "mask") if k in ll)
        lines.append("| " + " | ".join([r["run"], r["description"],
                                         "" if j is None else f"{j:.3f}", d, *per,
                                         str(r["steps"]), wall, loss or r.get("status", "")])
                     + " |")
    note = (f"\nMean J on DAVIS-2016 *train* sequences held out from every run "
            f"({', '.join(seqs)}; 240p, `davis` tracker preset, base-stage mask-head masks, "
            "frames 1..T-2). Short budget: differences of a few hundredths are within the "
            "noise of one seed.\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n" + note)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="*", type=Path,
                    help="ablation run files (default: configs/ablation/*.json)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation" / "results",
                    help="table path without suffix (.md and .json are written)")
    ap.add_argument("--data", default=None, help="dataset root (default: data_root())")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-only", action="store_true",
                    help="do not train; evaluate the runs that are finished")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop each run after this many steps of this call (it resumes later)")
    args = ap.parse_args(argv)
    paths = args.configs or sorted((ROOT / "configs" / "ablation").glob("*.json"))
    if not paths:
        print("error: no ablation configs", file=sys.stderr)
        return 2
    rows = []
    for p in paths:
        try:
            rows.append(run_one(p, args.data, args.threads, args.eval_only, args.max_steps))
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {p}: {exc}", file=sys.stderr)
            return 2
        write_table(rows, args.out)  # after each run: a partial table survives a stop
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
