"""Export a SiamMask-Lite training checkpoint as the shipped fp16 weights, with its model card.

Usage (from the checkout root)::

    python scripts/export_lite.py [CHECKPOINT] [--lost-json runs/lite/lost.json]
        [--out siammask_edu/weights/siammask_lite.pth] [--run-dir runs/lite]

``CHECKPOINT`` defaults to ``runs/lite/1_refine/final.pth``. The script

1. loads the checkpoint (our format: ``save_checkpoint`` / the training loop's files),
   refuses an unfinished stage unless ``--allow-intermediate`` (an *interim* release: the
   model card then says, above everything else, at which step of which stage the snapshot
   was taken, so that the package can ship working weights while a run spanning several
   sessions goes on);
2. writes ``--out`` with ``save_checkpoint(..., half=True)`` (fp16, <= 25 MB), carrying the
   calibrated ``lost_score`` of ``--lost-json`` (``scripts/calibrate_lost.py``) if given;
3. reads the run's logs (``<run-dir>/<i>_<stage>/config.json``, ``log.csv``,
   ``summary.json``): data, steps, wall time (``elapsed_s`` summed over resumed
   segments), first and last logged losses;
4. loads the exported file back and measures J on the DAVIS-2016 val sequences
   (blackswan, car-shadow, dog; 480p; start box = bounding box of the first annotation; J
   over frames 1..T-2, the official ``[1:-1]``) and the tracking speed on ``--threads``,
   for the exact fp32 path and for ``precision="bf16"`` (``--precisions``): after an
   untimed warm-up, ``--speed-repeats`` passes over the sequences (J must be the same in
   each), fps = the median of the passes' frames per second;
5. fills the results section of the model card (``MODEL_CARD.md`` beside ``--out``; the
   template is the package's ``siammask_edu/weights/MODEL_CARD.md``) between the markers
   ``<!-- results:begin -->`` and ``<!-- results:end -->``, and writes a JSON report.

See book/09_training_lite.py.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from siammask_edu import Tracker, io, load_checkpoint, save_checkpoint
from siammask_edu.checkpoint import read_state_file
from siammask_edu.config import tracker_config
from siammask_edu.metrics.davis import jaccard
from siammask_edu.paths import davis_sequence
from siammask_edu.training import TrainConfig

PACKAGE_WEIGHTS = Path(__file__).resolve().parent.parent / "siammask_edu" / "weights"
TEMPLATE = PACKAGE_WEIGHTS / "MODEL_CARD.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
VAL_SEQUENCES = ("blackswan", "car-shadow", "dog")
MAX_MB = 25.0


def track_davis(tracker: Tracker, name: str, resolution: str = "480p", max_frames=None,
                data_root=None, seg_thrs=None) -> dict:
    """Track one DAVIS sequence from the bounding box of its first annotation.

    Args:
        tracker: a :class:`Tracker` (re-initialised here).
        name: sequence name; ``resolution``: ``"480p"``, ``"240p"``, ...
        max_frames: only the first ``max_frames`` frames (None: all).
        seg_thrs: optional mask thresholds: J is also computed for ``mask_prob > thr``
            with each of them (the mask never feeds back into the tracker's state, so one
            run gives J for every threshold).

    Returns:
        dict: ``frames`` (T), ``J_per_frame`` (np.ndarray[T-1], frames 1..T-1, with the
        tracker's own ``seg_thr``), ``scores`` and ``lost`` (lists, frames 1..T-1),
        ``seconds`` (time in ``track`` calls), ``first`` (the init frame, RGB), ``box``
        and, with ``seg_thrs``, ``J_by_thr`` (np.ndarray[T-1, len(seg_thrs)]).
    """
    frames_dir, annos_dir = davis_sequence(name, resolution, data_root)
    paths = io.list_images(frames_dir)[:max_frames]
    gts = [cv2.imread(str(annos_dir / (p.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 0
           for p in paths]
    frames = [io.read_image(p) for p in paths]
    box = cv2.boundingRect(gts[0].astype(np.uint8))
    tracker.init(frames[0], box)
    js, by_thr, scores, lost, seconds = [], [], [], [], 0.0
    for frame, gt in zip(frames[1:], gts[1:]):
        t0 = time.perf_counter()
        r = tracker.track(frame)
        seconds += time.perf_counter() - t0
        js.append(jaccard(r.mask, gt))
        if seg_thrs is not None:
            by_thr.append([jaccard(r.mask_prob > t, gt) for t in seg_thrs])
        scores.append(r.score)
        lost.append(r.lost)
    out = {"frames": len(frames), "J_per_frame": np.array(js), "scores": scores, "lost": lost,
           "seconds": seconds, "first": frames[0], "box": box}
    if seg_thrs is not None:
        out["J_by_thr"] = np.array(by_thr, dtype=float).reshape(len(js), len(seg_thrs))
    return out


def load_for_tracking(checkpoint: Path):
    """The network of a checkpoint as the tracker should use it.

    A base-stage checkpoint holds a refinement module that has not been trained yet (the
    refine stage trains it): it is dropped, so that the tracker uses the mask head's 63x63
    masks. A refine-stage (or any other) checkpoint is loaded as it is.

    Returns:
        ``(model, extra)``: the :class:`SiamMask` in eval mode and the file's ``extra``.
    """
    import warnings

    from siammask_edu import ModelConfig, load_released_checkpoint

    raw = read_state_file(checkpoint)
    extra = raw.get("extra") or {}
    if extra.get("stage") == "base" and raw.get("model_config", {}).get("refine"):
        cfg = ModelConfig.from_dict(raw["model_config"]).replace(refine=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "ignoring N refine_model.* tensors": intended
            return load_released_checkpoint(checkpoint, cfg), extra
    return load_checkpoint(checkpoint), extra


def _wall_seconds(rows: list[dict]) -> float:
    """Sum of ``elapsed_s`` over the segments of a resumed log (elapsed restarts at 0)."""
    total, prev = 0.0, 0.0
    for r in rows:
        e = float(r["elapsed_s"])
        if e < prev:
            total += prev
        prev = e
    return total + prev


def run_summary(run_dir: Path, stage: str | None = None, until_step: int | None = None
                ) -> list[dict]:
    """One dict per stage folder ``<run_dir>/<i>_<stage>``: config, steps, wall time, losses.

    For an interim export (``stage``, ``until_step``: the exported snapshot), that stage's
    log is read only up to the snapshot (the run may have gone on since) and later stages
    are left out."""
    out = []
    for d in sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name[:1].isdigit()):
        cfg_file, log_file = d / "config.json", d / "log.csv"
        if not (cfg_file.is_file() and log_file.is_file()):
            continue
        cfg = TrainConfig.from_dict(json.loads(cfg_file.read_text()))
        with open(log_file) as fh:
            rows = list(csv.DictReader(fh))
        if until_step is not None and cfg.stage == stage:
            rows = [r for r in rows if int(r["step"]) < until_step]
        if not rows:
            continue
        summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() \
            else None

        def losses(r):
            return {k: float(r[k]) for k in ("total", "score", "box", "mask", "mask_iou")
                    if r.get(k) not in (None, "", "nan")}

        out.append({"stage_dir": d.name, "stage": cfg.stage, "model": cfg.model,
                    "steps_done": int(rows[-1]["step"]) + 1, "steps_total": cfg.total_steps,
                    "batch_size": cfg.batch_size, "data": [dict(s) for s in cfg.data],
                    "source_probs": cfg.source_probs, "wall_s": _wall_seconds(rows),
                    "first": losses(rows[0]), "last": losses(rows[-1]),
                    "first_step": int(rows[0]["step"]), "last_step": int(rows[-1]["step"]),
                    "finished": (d / "final.pth").is_file(),
                    "skipped": len(summary["skipped"]) if summary else None})
        if until_step is not None and cfg.stage == stage:
            out[-1]["finished"] = False
            break
    return out


def _fmt_losses(d: dict) -> str:
    return " / ".join(f"{d[k]:.3f}" if k in d else "-" for k in ("total", "score", "box", "mask"))


def _hms(s: float) -> str:
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def card_section(report: dict) -> str:
    """The markdown of the model card's results section from an export report."""
    r = report
    lines = ["## Results", ""]
    if r["intermediate"]:
        lines += [(f"**INTERIM weights: a snapshot of an unfinished training run (stage "
                   f"{r['stage']}, step {r['step']} of {r['steps_total']}).** Training goes on "
                   "and these weights will be replaced; the figures below describe this "
                   "snapshot only."), ""]
    if r["stage"] == "base":
        lines += [("Base-stage checkpoint: the refinement module is untrained and was left "
                   "out; masks come from the mask head (63x63)."), ""]
    lines += [(f"Exported {r['date']} by `scripts/export_lite.py` from `{r['checkpoint']}` "
               f"(stage {r['stage']}, step {r['step']} of {r['steps_total']}). File "
               f"`{r['out_name']}`: {r['size_mb']:.1f} MB (fp16), SHA-256 `{r['sha256']}`."),
              ""]
    lines += ["### Training", ""]
    if r["stages"]:
        lines += [("| stage | steps | batch | wall time | first logged loss (total / score / "
                   "box / mask) | last logged loss | last RoW mask IoU | skipped steps |"),
                  "|---|---|---|---|---|---|---|---|"]
        for s in r["stages"]:
            lines.append(
                f"| {s['stage_dir']} | {s['steps_done']} / {s['steps_total']} | {s['batch_size']}"
                f" | {_hms(s['wall_s'])} | {_fmt_losses(s['first'])} (step {s['first_step']}) "
                f"| {_fmt_losses(s['last'])} (step {s['last_step']}) | "
                f"{s['last'].get('mask_iou', float('nan')):.3f} | "
                f"{s['skipped'] if s['skipped'] is not None else '-'} |")
        total = sum(s["wall_s"] for s in r["stages"])
        data = r["stages"][0]["data"]
        pairs = sum(s["steps_done"] * s["batch_size"] for s in r["stages"])
        lines += ["", (f"Total wall time {_hms(total)} ({total:.0f} s, `elapsed_s` of "
                       "`log.csv` summed over resumed segments), "
                       f"{pairs} training pairs. Data: `{json.dumps(data)}`, source "
                       f"probabilities {r['stages'][0]['source_probs']}. Losses are the mean "
                       "over the logging window; the unweighted terms (weights 1 / 1.2 / 36).")]
    else:
        lines += ["No training logs were found beside the checkpoint."]
    busy = (f" (load above the {r['threads']} threads used: other jobs were running, "
            "the speed is a lower bound)") if r["load"][0] > r["threads"] else ""
    lines += ["", f"### DAVIS-2016 val ({r['resolution']}, never used for training)", "",
              ("J = region similarity over frames 1..T-2 (official `[1:-1]`), start box = "
               "bounding box of the first annotation, tracker preset "
               f"`{r['tracker_config']}`."), "",
              f"The main columns are the exact `precision=\"{r['precision']}\"` path.", "",
              "| sequence | frames | J mean | frames reported lost |", "|---|---|---|---|"]
    for name, v in r["val"].items():
        lines.append(f"| {name} | {v['frames']} | {v['J']:.3f} | {v['lost']} |")
    lines += [f"| **mean** | | **{r['J_mean']:.3f}** | |", ""]
    others = {k: v for k, v in r.get("by_precision", {}).items() if k != r["precision"]}
    for prec, b in others.items():
        js = ", ".join(f"{n} {v['J']:.3f}" for n, v in b["val"].items())
        lines += [(f"With `precision=\"{prec}\"` (autocast): J {js}; mean {b['J_mean']:.3f} "
                   f"({b['J_mean'] - r['J_mean']:+.3f} against {r['precision']}); "
                   f"{b['fps']:.1f} frames per second."), ""]
    fps = {k: v["fps"] for k, v in r.get("by_precision", {}).items()} or {
        r.get("precision", "fp32"): r["fps"]}
    fast = [k for k, v in fps.items() if v >= 30]
    lines += [(f"Target mean J >= 0.60: {'met' if r['J_mean'] >= 0.60 else 'not met'} "
               "(a perfect axis-aligned box scores 0.455 on DAVIS-2016 val)."), "",
              "### Speed", "",
              (", ".join(f"{v:.1f} frames per second with {k}" for k, v in fps.items())
               + f" on {r['threads']} CPU threads (`Tracker.track` only, {r['fps_frames']} "
               f"frames of the sequences above; the median of {len(r.get('fps_runs', [0]))} "
               "passes after a warm-up: "
               + "; ".join(f"{k} " + ", ".join(f"{x:.1f}" for x in v.get("fps_runs", []))
                           for k, v in r.get("by_precision", {}).items())
               + f"), {r['cpu']}, load average "
               f"{r['load'][0]:.2f} when measured{busy}. Target >= 30 fps: "
               + (f"met with {', '.join(fast)}." if fast else "not met.")), "",
              "### Target lost", ""]
    if r["lost_source"] is None:
        lines.append(f"`lost_score = {r['lost_score']}`: the uncalibrated default of "
                     "`TrackerConfig` (no calibration given to the export).")
    else:
        c = r["lost_source"]
        lines.append(f"`lost_score = {r['lost_score']:.4f}`, calibrated by "
                     f"`scripts/calibrate_lost.py` on {len(c['sequences'])} DAVIS-2016 train "
                     f"sequences at {c['resolution']}: balanced accuracy "
                     f"{c['balanced_accuracy']:.3f} ({c['n_on_target']} on-target frames, "
                     f"{c['n_off_target']} off-target and {c['n_absent']} target-absent frames).")
    lines += ["", "### Mask threshold", ""]
    c = r["lost_source"] or {}
    if "seg_thr" in c:
        grid = ", ".join(f"{t:g}: {j:.3f}" for t, j in zip(c["seg_thr_grid"], c["seg_thr_J"]))
        lines.append(f"`seg_thr = {r['seg_thr']:g}`, calibrated by the same script on the same "
                     f"train sequences (the threshold of the best mean J; J by threshold: {grid}).")
    else:
        lines.append(f"`seg_thr = {r.get('seg_thr', tracker_config(r['tracker_config']).seg_thr):g}`:"
                     f" the `{r['tracker_config']}` preset's value (not calibrated).")
    lines += ["", "Reproduce: `" + r["command"] + "`"]
    return "\n".join(lines)


def fill_card(template: str, section: str) -> str:
    """Replace the text between the results markers of ``template`` by ``section``."""
    if template.count(BEGIN) != 1 or template.count(END) != 1:
        raise ValueError(f"the model card template must hold {BEGIN} and {END} once each")
    head, rest = template.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{section}\n{END}{tail}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export(checkpoint: Path, out: Path, card: Path | None = None, run_dir: Path | None = None,
           lost_json: Path | None = None, sequences=VAL_SEQUENCES, resolution: str = "480p",
           max_frames=None, threads: int = 2, allow_intermediate: bool = False,
           data_root=None, config: str = "davis", precisions=("fp32", "bf16"),
           speed_repeats: int = 3) -> dict:
    """Steps 1-5 of the module docstring. Returns the report (also written as JSON beside
    ``out``).

    Raises:
        FileNotFoundError: missing checkpoint.
        ValueError: an unfinished stage without ``allow_intermediate``, or a file over
            25 MB.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist (train with "
                                "`siammask-edu train configs/train_lite.json`)")
    model, extra = load_for_tracking(checkpoint)
    step = int(extra.get("step", 0))
    tc = json.loads(extra["train_config"]) if "train_config" in extra else None
    total = TrainConfig.from_dict(tc).total_steps if tc else None
    intermediate = tc is None or step < total
    if intermediate and not allow_intermediate:
        raise ValueError(f"{checkpoint} is not the end of a finished stage (step {step} of "
                         f"{total}); pass --allow-intermediate to export it as interim weights")
    lost_source = json.loads(Path(lost_json).read_text()) if lost_json else None
    default_lost = tracker_config(config).lost_score
    lost_score = float(lost_source["lost_score"]) if lost_source else default_lost
    ship_extra = {"stage": extra.get("stage"), "step": step, "steps_total": total,
                  "source_checkpoint": checkpoint.name, "intermediate": intermediate}
    if tc:
        ship_extra["train_config"] = json.dumps(tc)
    if lost_source:
        ship_extra["lost_score"] = lost_score
        ship_extra["lost_score_source"] = json.dumps(lost_source)
    seg_thr = tracker_config(config).seg_thr
    if lost_source and "seg_thr" in lost_source:
        seg_thr = float(lost_source["seg_thr"])
        ship_extra["seg_thr"] = seg_thr
    save_checkpoint(model, out, ship_extra, half=True)
    size_mb = out.stat().st_size / 2**20
    if size_mb > MAX_MB:
        out.unlink()
        raise ValueError(f"exported file is {size_mb:.1f} MB > {MAX_MB} MB")
    # measure what ships: the fp16 file, loaded back, with each precision
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    by_precision = {}
    try:
        for precision in precisions:
            tracker = Tracker.from_pretrained("lite", config=config, weights=out,
                                              precision=precision)
            # warm-up, untimed: the first calls build oneDNN's kernels for each shape
            track_davis(tracker, sequences[0], resolution, 5, data_root)
            val, fps_runs = {}, []
            for rep in range(max(1, speed_repeats)):
                frames, secs = 0, 0.0
                for name in sequences:
                    res = track_davis(tracker, name, resolution, max_frames, data_root)
                    j = res["J_per_frame"][:-1]  # frames 1..T-2
                    v = {"frames": res["frames"], "J": float(np.mean(j)) if j.size else
                         float("nan"), "lost": int(sum(res["lost"]))}
                    if rep and v != val[name]:  # the tracker is deterministic
                        raise RuntimeError(f"{name}: repeat {rep} gave {v}, first {val[name]}")
                    val[name] = v
                    frames += res["frames"] - 1
                    secs += res["seconds"]
                fps_runs.append(frames / max(secs, 1e-9))
            by_precision[precision] = {
                "val": val, "J_mean": float(np.mean([v["J"] for v in val.values()])),
                "fps": float(np.median(fps_runs)), "fps_runs": fps_runs, "fps_frames": frames}
    finally:
        torch.set_num_threads(old)
    main = by_precision[precisions[0]]
    val, frames = main["val"], main["fps_frames"]
    run_dir = Path(run_dir) if run_dir else checkpoint.parent.parent
    stages = (run_summary(run_dir, extra.get("stage"), step if intermediate else None)
              if run_dir.is_dir() else [])
    report = {"date": datetime.date.today().isoformat(), "checkpoint": _rel(checkpoint),
              "stage": extra.get("stage"), "step": step, "steps_total": total,
              "intermediate": intermediate, "out_name": out.name, "size_mb": size_mb,
              "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "stages": stages,
              "resolution": resolution, "tracker_config": config, "val": val,
              "J_mean": float(np.mean([v["J"] for v in val.values()])),
              "fps": main["fps"], "fps_runs": main["fps_runs"], "fps_frames": frames,
              "threads": threads, "speed_repeats": speed_repeats,
              "precision": precisions[0], "by_precision": by_precision,
              "cpu": _cpu_name(), "load": list(os.getloadavg()),
              "lost_score": lost_score, "lost_source": lost_source, "seg_thr": seg_thr,
              "command": " ".join(["python", "scripts/export_lite.py"] + sys.argv[1:])}
    card = Path(card) if card else out.with_name("MODEL_CARD.md")
    card.write_text(fill_card(TEMPLATE.read_text(), card_section(report)))
    out.with_name(out.stem + "_report.json").write_text(json.dumps(report, indent=2))
    return report


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return Path(p).name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", nargs="?", default="runs/lite/1_refine/final.pth")
    ap.add_argument("--out", default=str(PACKAGE_WEIGHTS / "siammask_lite.pth"))
    ap.add_argument("--card", default=None, help="default: MODEL_CARD.md beside --out")
    ap.add_argument("--run-dir", default=None, help="default: the checkpoint's grandparent")
    ap.add_argument("--lost-json", default=None, help="output of scripts/calibrate_lost.py")
    ap.add_argument("--sequences", nargs="+", default=list(VAL_SEQUENCES))
    ap.add_argument("--resolution", default="480p")
    ap.add_argument("--max-frames", type=int, default=None, help="(tests) frames per sequence")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                    choices=["fp32", "bf16"], help="tracker precisions measured; the first "
                    "one gives the main table")
    ap.add_argument("--speed-repeats", type=int, default=3,
                    help="passes over the sequences per precision; fps is their median")
    ap.add_argument("--data", default=None, help="dataset root (default: data_root())")
    ap.add_argument("--allow-intermediate", action="store_true",
                    help="export an unfinished stage (interim weights, labelled so)")
    a = ap.parse_args(argv)
    try:
        r = export(Path(a.checkpoint), Path(a.out), a.card and Path(a.card),
                   a.run_dir and Path(a.run_dir), a.lost_json and Path(a.lost_json),
                   a.sequences, a.resolution, a.max_frames, a.threads, a.allow_intermediate,
                   a.data, precisions=tuple(a.precisions), speed_repeats=a.speed_repeats)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    js = ", ".join(f"{k} {v['J']:.3f}" for k, v in r["val"].items())
    print(f"wrote {a.out} ({r['size_mb']:.1f} MB) | J: {js} | mean {r['J_mean']:.3f} | "
          f"{r['fps']:.1f} fps on {r['threads']} threads | lost_score {r['lost_score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
