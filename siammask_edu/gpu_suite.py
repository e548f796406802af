"""The GPU suite: one prepared run that times tracking and training on a lent GPU and writes
one JSON (``python -m siammask_edu.gpu_suite``; ``benchmarks/gpu_suite.sh`` on a bare
machine).

A GPU is lent to this project rarely and briefly (one H200 for 15 minutes per issue), so
everything the book wants to know from one is measured in a single call that fits in 8
minutes, and the run writes its JSON after every row (atomically): a run cut short still
leaves every row it finished, and ``"complete": false``.

**(a) Tracking.** For each preset (``sharp``, ``base``, ``lite``), precision (``fp32``,
``bf16`` and ``fp16`` autocast, :mod:`siammask_edu.precision`), ``torch.compile`` of the
backbone (off / on) and number of objects N (1 with :class:`~siammask_edu.tracker.Tracker`,
more with one batched :class:`~siammask_edu.multi.MultiTracker`), the shipped ``bunny``
sample (640x360) is tracked; after ``warmup`` untimed frames, each frame's
``track(frame)`` is timed with CUDA events (start recorded before the call, end after it:
the crop, the network, the CPU post-processing and the copies, i.e. what a user waits for;
on a CPU dry run, ``time.perf_counter``). Rows give the median and mean ms per frame and
object-frames per second (``N * 1000 / mean``). ``sharp`` and ``base`` run the released
architecture with seeded random weights (``torch.manual_seed(1)``; speed depends on the
architecture, not on the values), ``lite`` the weights shipped in the package.

**(b) Training.** Pairs per second of the base-stage training step (forward, the three
losses, backward, gradient clipping, SGD) of ``lite`` and of the ResNet-50 ``sharp`` preset
with their later backbone blocks trainable, on batches prepared beforehand from synthetic
sequences (:func:`~siammask_edu.datasets.write_synthetic_sequences`): the GPU's step rate,
data loading excluded; the CPU rate of the pair sampler that would feed it is recorded
beside it (pairs/s per worker process).

Configurations that cannot run where the suite runs (``fp16`` off CUDA) are kept as rows
with ``status: "skipped"`` and the reason; a configuration that fails is a row with
``status: "error"`` and the message; configurations not started before ``--budget-s``
(``torch.compile`` of a ResNet-50 takes tens of seconds per shape) are ``skipped`` with
that reason. Nothing is invented: a row either holds a measurement or says why not.

    python -m siammask_edu.gpu_suite --out gpu_suite.json            # the full suite
    python -m siammask_edu.gpu_suite --dry-run --out /tmp/dry.json  # tiny sizes, any CPU

See book/11_speed.py (which prints :func:`format_tables` of the committed JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

PRESETS = ("lite", "sharp", "base")
PRECISIONS = ("fp32", "bf16", "fp16")
OBJECTS = (1, 8, 32)
COMPILE = (False, True)
SAMPLE = "bunny"
SCHEMA = 1

# Reference speeds printed beside ours (single object, whole tracker).
PAPER_FPS = {"what": "paper, SiamMask (sharp), NVIDIA Titan X", "fps": 35.0}
RELEASED_FPS = {"what": "released code README, SiamMask (sharp), NVIDIA RTX 2080", "fps": 56.0}

# Backbone blocks made trainable for the training-throughput rows: the later blocks, as in
# the released recipe (ResNet-50 layer2-3 after epoch 10) and the lite preset (blocks 9-10).
TRAIN_UNFREEZE = {"sharp": ("backbone.layer2.", "backbone.layer3."),
                  "base": ("backbone.layer2.", "backbone.layer3."),
                  "lite": ("backbone.blocks.9.", "backbone.blocks.10.")}


# ---------------------------------------------------------------------------------------
# Environment and output
# ---------------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    """Versions and hardware of this run (stored once in the JSON)."""
    import cv2

    env = {"device": str(device), "python": platform.python_version(),
           "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
           "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "cpu": _cpu_model(), "torch_threads": torch.get_num_threads(),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   multiprocessors=props.multi_processor_count,
                   capability=f"{props.major}.{props.minor}")
        try:
            import triton

            env["triton"] = triton.__version__
        except ImportError:
            env["triton"] = None
    else:
        env["gpu"] = None
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_json_atomic(obj: dict, path: Path) -> None:
    """Write ``obj`` to ``path`` through a temporary file in the same folder and a rename,
    so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------
# Timers
# ---------------------------------------------------------------------------------------


class _FrameTimer:
    """Per-call milliseconds: CUDA events on a CUDA device (read after one final
    synchronisation), ``time.perf_counter`` elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pairs: list = []

    def time(self, fn):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            self.pairs.append((start, end))
        else:
            t0 = time.perf_counter()
            out = fn()
            self.pairs.append(1000.0 * (time.perf_counter() - t0))
        return out

    def ms(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [float(s.elapsed_time(e)) for s, e in self.pairs]
        return list(self.pairs)


def _summary(ms: list[float], objects: int) -> dict:
    mean = statistics.fmean(ms)
    return {"frames_timed": len(ms), "median_ms": statistics.median(ms), "mean_ms": mean,
            "min_ms": min(ms), "p90_ms": float(np.percentile(ms, 90)),
            "fps": 1000.0 / mean, "object_frames_per_s": objects * 1000.0 / mean}


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


# ---------------------------------------------------------------------------------------
# (a) Tracking
# ---------------------------------------------------------------------------------------


def _model(preset: str):
    """``(model, weights description)``: lite's shipped weights, seeded random otherwise."""
    from .checkpoint import load_checkpoint
    from .models import build_model

    if preset == "lite":
        from importlib import resources

        from .tracker import pretrained_path

        with resources.as_file(pretrained_path("lite")) as p:
            return load_checkpoint(p), "shipped SiamMask-Lite weights"
    torch.manual_seed(1)
    return build_model(preset), "seeded random weights (torch.manual_seed(1)), released layout"


def _boxes(box, n: int, hw) -> list[tuple[float, float, float, float]]:
    """``n`` boxes: the sample's box, then copies spread around it (inside the frame)."""
    x, y, w, h = box
    H, W = hw
    out = [tuple(float(v) for v in box)]
    for k in range(1, n):
        a = 2 * np.pi * k / max(n - 1, 1)
        bx = float(np.clip(x + 0.5 * w * np.cos(a), 0, W - w))
        by = float(np.clip(y + 0.5 * h * np.sin(a), 0, H - h))
        out.append((bx, by, float(w), float(h)))
    return out


def tracking_row(preset: str, precision: str, compiled: bool, objects: int, frames: list,
                 box, device: torch.device, warmup: int) -> dict:
    """Time one tracking configuration (see the module docstring); returns its row.

    Raises:
        ValueError: an invalid precision for the device (the caller records it as skipped).
    """
    from .multi import MultiTracker
    from .precision import check_precision
    from .tracker import Tracker

    check_precision(precision, device)
    model, weights = _model(preset)
    row = {"preset": preset, "precision": precision, "compile": compiled, "objects": objects,
           "weights": weights, "frames": len(frames), "warmup": warmup}
    _reset_peak(device)
    if compiled:
        torch._dynamo.reset()  # a fresh cache for each configuration: no stale guards
        model.backbone = torch.compile(model.backbone)
        row["compiled"] = "torch.compile(model.backbone), mode 'default'"
    if objects == 1:
        tracker = Tracker(model, "davis", device=device, color_order="rgb", precision=precision)
        t0 = time.perf_counter()
        tracker.init(frames[0], box)
        step = tracker.track
    else:
        tracker = MultiTracker(model, "davis", device=device, color_order="rgb",
                               precision=precision)
        t0 = time.perf_counter()
        tracker.init(frames[0], _boxes(box, objects, frames[0].shape[:2]))
        step = tracker.track
    row["init_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in frames[1:1 + warmup]:
        step(f)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    row["warmup_s"] = time.perf_counter() - t0
    timer = _FrameTimer(device)
    for f in frames[1 + warmup:]:
        timer.time(lambda f=f: step(f))
    row.update(_summary(timer.ms(), objects))
    row["cuda_peak_allocated_mib"] = _peak_mib(device)
    return row


# ---------------------------------------------------------------------------------------
# (b) Training throughput
# ---------------------------------------------------------------------------------------


def _pair_batches(batch: int, count: int, seed: int = 0) -> tuple[list[dict], float]:
    """``count`` collated base-stage batches of ``batch`` pairs from synthetic sequences,
    and the sampler's rate on this process (pairs/s)."""
    from .datasets import CustomSource, PairConfig, PairDataset, collate, \
        write_synthetic_sequences

    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic_sequences(Path(tmp) / "seqs", num_sequences=4, num_frames=12,
                                         size=(320, 240), seed=seed)
        ds = PairDataset([CustomSource(root)], PairConfig.base(), seed=seed, length=10**6)
        t0 = time.perf_counter()
        items = [ds[i] for i in range(batch * count)]
        rate = len(items) / (time.perf_counter() - t0)
    return [collate(items[i * batch:(i + 1) * batch]) for i in range(count)], rate


def training_row(preset: str, precision: str, device: torch.device, batch: int, steps: int,
                 warmup: int, batches: list[dict], sampler_rate: float) -> dict:
    """Pairs/s of the base-stage training step of ``preset`` (see the module docstring).

    ``precision``: ``"fp32"``, or ``"bf16"`` for the backbone under bfloat16 autocast
    (:class:`~siammask_edu.training.SiamMaskTrainer`'s ``bf16_backbone``).
    """
    from .losses import LossWeights
    from .models import build_model
    from .training import SiamMaskTrainer, TrainConfig, build_optimizer, set_modes, \
        set_trainable

    if precision not in ("fp32", "bf16"):
        raise ValueError(f"training precision must be fp32 or bf16, got {precision!r}")
    torch.manual_seed(1)
    model = build_model(preset).to(device)
    cfg = TrainConfig(name="gpu_suite", stage="base", model=preset, batch_size=batch,
                      unfreeze_epoch=0, unfreeze=TRAIN_UNFREEZE[preset],
                      bf16_backbone=precision == "bf16")
    set_trainable(model, cfg, epoch=1)
    set_modes(model, cfg)
    opt = build_optimizer(model, cfg)
    trainer = SiamMaskTrainer(model, "base", LossWeights.released(), cfg.bf16_backbone)
    params = [p for p in model.parameters() if p.requires_grad]
    on_device = [{k: v.to(device) for k, v in b.items()} for b in batches]
    _reset_peak(device)

    def one_step(i):
        opt.zero_grad(set_to_none=True)
        losses = trainer(on_device[i % len(on_device)])
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        opt.step()
        return losses["total"]

    for i in range(warmup):
        one_step(i)
    timer = _FrameTimer(device)
    last = None
    for i in range(steps):
        last = timer.time(lambda i=i: one_step(i))
    ms = timer.ms()
    loss = float(last.detach())
    mean = statistics.fmean(ms)
    return {"preset": preset, "precision": precision, "stage": "base", "batch": batch,
            "search_size": 255, "trainable_backbone": list(TRAIN_UNFREEZE[preset]),
            "trainable_parameters": sum(p.numel() for p in params),
            "steps_timed": len(ms), "warmup": warmup, "median_ms_per_step": statistics.median(ms),
            "mean_ms_per_step": mean, "pairs_per_s": batch * 1000.0 / mean,
            "last_loss": loss, "loss_finite": bool(np.isfinite(loss)),
            "sampler_pairs_per_s_one_process": sampler_rate,
            "data": "synthetic sequences (write_synthetic_sequences, 320x240), batches "
                    "prepared before timing",
            "cuda_peak_allocated_mib": _peak_mib(device)}


# ---------------------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------------------


def tracking_plan(presets, precisions, objects, compile_modes) -> list[tuple]:
    """The tracking configurations in the order they run: every eager row first (cheap),
    then the compiled rows (each costs compilations), single objects first, preset by
    preset in the order given."""
    plan = []
    for compiled in compile_modes:
        for n in objects:
            for preset in presets:
                for precision in precisions:
                    plan.append((preset, precision, compiled, n))
    return plan


def run_suite(out: Path, device: str = "cuda", presets=PRESETS, precisions=PRECISIONS,
              objects=OBJECTS, compile_modes=COMPILE, frames: int = 60, warmup: int = 10,
              train_presets=("lite", "sharp"), train_precisions=("fp32", "bf16"),
              train_batch: int = 32, train_steps: int = 10, train_warmup: int = 3,
              budget_s: float = 420.0, dry_run: bool = False, log=print) -> dict:
    """Run the suite and write ``out`` (JSON) after every row; returns the result.

    Raises:
        ValueError: an unknown preset, precision or device kind; fewer frames than
            ``warmup + 2``.
    """
    from .data import load_sample

    for p in list(presets) + list(train_presets):
        if p not in ("sharp", "base", "lite", "tiny"):
            raise ValueError(f"unknown preset {p!r}; expected sharp, base, lite or tiny")
    for p in precisions:
        if p not in PRECISIONS:
            raise ValueError(f"unknown precision {p!r}; expected one of {PRECISIONS}")
    if frames < warmup + 2:
        raise ValueError(f"need frames >= warmup + 2, got frames={frames}, warmup={warmup}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device "
                         "(use --dry-run for a CPU check)")
    t_start = time.perf_counter()
    sample = load_sample(SAMPLE)
    clip = list(sample.frames[:frames])
    if len(clip) < frames:
        raise ValueError(f"the {SAMPLE} sample has {len(clip)} frames, fewer than {frames}")
    result = {
        "schema": SCHEMA, "suite": "siammask-edu GPU suite", "complete": False,
        "dry_run": dry_run, "environment": environment(dev),
        "settings": {"sample": SAMPLE, "frame_wh": [int(clip[0].shape[1]),
                                                    int(clip[0].shape[0])],
                     "frames": frames, "warmup": warmup, "tracker_config": "davis",
                     "timer": "CUDA events around Tracker.track / MultiTracker.track"
                              if dev.type == "cuda" else "time.perf_counter (no CUDA)",
                     "train_batch": train_batch, "train_steps": train_steps,
                     "budget_s": budget_s},
        "references": [PAPER_FPS, RELEASED_FPS],
        "tracking": [], "training": [], "elapsed_s": 0.0,
    }

    def save():
        result["elapsed_s"] = time.perf_counter() - t_start
        write_json_atomic(result, out)

    def over_budget():
        return time.perf_counter() - t_start > budget_s

    save()
    # Training rows run before the compiled tracking rows: they are cheap and a training
    # figure is one of the suite's two deliverables.
    plan = tracking_plan(presets, precisions, objects, compile_modes)
    eager = [p for p in plan if not p[2]]
    compiled = [p for p in plan if p[2]]

    def run_tracking(cfgs):
        for preset, precision, comp, n in cfgs:
            key = {"preset": preset, "precision": precision, "compile": comp, "objects": n}
            run_row("tracking", key, lambda: tracking_row(preset, precision, comp, n, clip,
                                                          sample.box, dev, warmup),
                    skip_on_value_error=True)  # e.g. fp16 on a CPU

    def run_row(table, key, measure, skip_on_value_error=False):
        """One row: measured, or skipped/error with the reason; logged and saved at once."""
        if over_budget():
            row = dict(key, status="skipped",
                       reason=f"time budget of {budget_s:.0f} s spent before this row")
        else:
            t0 = time.perf_counter()
            try:
                row = dict(measure(), status="ok")
            except Exception as exc:  # noqa: BLE001 - recorded, the suite goes on
                if skip_on_value_error and isinstance(exc, ValueError):
                    row = dict(key, status="skipped", reason=str(exc))
                else:
                    row = dict(key, status="error", reason=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc()[-2000:])
            row["row_s"] = time.perf_counter() - t0
        result[table].append(row)
        log(_row_line(row) if table == "tracking" else _train_line(row))
        save()

    run_tracking(eager)
    data = {}

    def training(preset, precision):
        if not data:  # prepared once, on the first training row
            data["batches"], data["rate"] = _pair_batches(train_batch, 2)
        return training_row(preset, precision, dev, train_batch, train_steps, train_warmup,
                            data["batches"], data["rate"])

    for preset in train_presets:
        for precision in train_precisions:
            run_row("training", {"preset": preset, "precision": precision},
                    lambda: training(preset, precision))
    run_tracking(compiled)
    result["complete"] = True
    save()
    return result


# ---------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------


def _row_line(r: dict) -> str:
    head = (f"track {r['preset']:5s} {r['precision']} compile={'on ' if r['compile'] else 'off'}"
            f" N={r['objects']:<2d}")
    if r.get("status") != "ok":
        return f"{head} {r.get('status')}: {r.get('reason', '')[:200]}"
    return (f"{head} median {r['median_ms']:.2f} ms/frame, {r['object_frames_per_s']:.1f} "
            f"object-frames/s (warm-up {r['warmup_s']:.1f} s)")


def _train_line(r: dict) -> str:
    head = f"train {r['preset']:5s} {r['precision']}"
    if r.get("status") != "ok":
        return f"{head} {r.get('status')}: {r.get('reason', '')[:200]}"
    return (f"{head} batch {r['batch']}: {r['median_ms_per_step']:.1f} ms/step, "
            f"{r['pairs_per_s']:.0f} pairs/s (loss {r['last_loss']:.3f})")


def format_tables(result: dict) -> str:
    """Markdown: the run's environment, the tracking table (ms per frame, object-frames/s;
    eager and compiled side by side), the training table, and the reference speeds.

    See book/11_speed.py.
    """
    env = result["environment"]
    lines = [f"Device: {env.get('gpu') or env.get('device')} | date {env['date']} | torch "
             f"{env['torch']} | CUDA {env.get('cuda')} | cuDNN {env.get('cudnn')} | python "
             f"{env['python']}" + (" | DRY RUN (CPU, tiny sizes)" if result.get("dry_run")
                                   else ""),
             "", f"Tracking ({result['settings']['sample']} "
             f"{'x'.join(map(str, result['settings']['frame_wh']))}, "
             f"{result['settings']['frames'] - result['settings']['warmup'] - 1} timed frames "
             "after warm-up; ms per frame = median; obj-fr/s from the mean):", "",
             "| preset | precision | N | ms/frame | obj-frames/s | ms/frame compiled | "
             "obj-frames/s compiled |", "|---|---|---|---|---|---|---|"]
    rows = {(r["preset"], r["precision"], r["objects"], r["compile"]): r
            for r in result["tracking"]}
    keys = []
    for r in result["tracking"]:
        k = (r["preset"], r["precision"], r["objects"])
        if k not in keys:
            keys.append(k)

    def cell(r, what):
        if r is None:
            return "not run"
        if r.get("status") != "ok":
            return r.get("status", "?")
        return f"{r[what]:.2f}" if what == "median_ms" else f"{r[what]:.0f}"

    for preset, precision, n in sorted(keys, key=lambda k: (PRESETS.index(k[0])
                                                            if k[0] in PRESETS else 9,
                                                            k[2], PRECISIONS.index(k[1]))):
        e, c = rows.get((preset, precision, n, False)), rows.get((preset, precision, n, True))
        lines.append(f"| {preset} | {precision} | {n} | {cell(e, 'median_ms')} | "
                     f"{cell(e, 'object_frames_per_s')} | {cell(c, 'median_ms')} | "
                     f"{cell(c, 'object_frames_per_s')} |")
    if result["training"]:
        lines += ["", "Training (base stage, later backbone blocks trainable, batches prepared "
                  "before timing):", "",
                  "| preset | precision | batch | ms/step | pairs/s | sampler pairs/s (1 CPU "
                  "process) |", "|---|---|---|---|---|---|"]
        for r in result["training"]:
            if r.get("status") == "ok":
                lines.append(f"| {r['preset']} | {r['precision']} | {r['batch']} | "
                             f"{r['median_ms_per_step']:.1f} | {r['pairs_per_s']:.0f} | "
                             f"{r['sampler_pairs_per_s_one_process']:.0f} |")
            else:
                lines.append(f"| {r['preset']} | {r['precision']} | | {r.get('status')} | | |")
    lines += ["", "For comparison: " + "; ".join(f"{r['what']}: {r['fps']:.0f} fps"
                                                  for r in result.get("references", []))]
    skipped = [r for r in result["tracking"] + result["training"] if r.get("status") != "ok"]
    if skipped:
        lines += ["", "Not measured:"] + sorted({f"- {r.get('status')}: {r.get('reason')}"
                                                  for r in skipped})
    if not result.get("complete", False):
        lines += ["", "INCOMPLETE: the run stopped before its last row."]
    return "\n".join(lines)


def recorded_runs(folder: str | os.PathLike | None = None) -> list[dict]:
    """The suite's committed runs (``benchmarks/results/gpu_suite_*.json`` of the checkout,
    or ``folder``), oldest first; ``[]`` where there are none (an installed wheel has no
    ``benchmarks/``).

    Raises:
        ValueError: a file there that is not a suite result (names the file).

    See book/11_speed.py.
    """
    folder = Path(folder) if folder is not None else \
        Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    runs = []
    for path in sorted(folder.glob("gpu_suite_*.json")):
        try:
            r = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(r, dict) or r.get("schema") != SCHEMA or "tracking" not in r:
            raise ValueError(f"{path} is not a GPU-suite result of schema {SCHEMA}")
        r["path"] = str(path)
        runs.append(r)
    return sorted(runs, key=lambda r: r["environment"]["date"])


def row(result: dict, preset: str, precision: str = "fp32", objects: int = 1,
        compiled: bool = False) -> dict | None:
    """The tracking row of one configuration (``None`` if absent or not measured).

    See book/11_speed.py.
    """
    for r in result["tracking"]:
        if (r["preset"], r["precision"], r["objects"], r["compile"]) == \
                (preset, precision, objects, compiled) and r.get("status") == "ok":
            return r
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m siammask_edu.gpu_suite",
                                description="Time tracking and training on a GPU; one JSON.")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (atomically, "
                   "after every row)")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny sizes on any machine (CI): 4 frames, N = 1 and 2, batch 2, "
                        "2 steps, no torch.compile")
    p.add_argument("--presets", nargs="+", default=None, help=f"default {' '.join(PRESETS)}")
    p.add_argument("--train-presets", nargs="*", default=None,
                   help="presets of the training rows (default lite sharp; none: no training)")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="start no new row after this many seconds (default 420)")
    args = p.parse_args(argv)
    presets = tuple(args.presets) if args.presets else PRESETS
    if args.dry_run:
        kw = dict(device=args.device or "cpu", objects=(1, 2), compile_modes=(False,),
                  frames=4, warmup=1, train_batch=2, train_steps=2, train_warmup=1)
    else:
        kw = dict(device=args.device or "cuda")
    try:
        if args.train_presets is not None:
            kw["train_presets"] = tuple(args.train_presets)
        res = run_suite(args.out, presets=presets, budget_s=args.budget_s,
                        dry_run=args.dry_run, log=lambda s: print(s, flush=True), **kw)
    except ValueError as exc:
        print(f"gpu_suite: {exc}", file=sys.stderr)
        return 2
    print(format_tables(res))
    print(f"wrote {args.out} in {res['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
