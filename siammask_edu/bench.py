"""Speed benchmark: where a tracked frame's time goes (``siammask-edu bench``).

Each configuration (preset x threads x path) runs in a fresh subprocess (clean peak memory,
its own thread count) on a fixed real sequence, DAVIS-2016 ``car-shadow`` (854x480, init
box ``(313, 88, 342, 194)``). Frames are decoded before timing (decoding and drawing are
excluded); the first ``warmup`` tracked frames are not timed. Per frame it records, in
milliseconds of wall clock (device-synchronised; the stages of the tracker's one step,
:class:`~siammask_edu.step.TrackStep`, timed by the :class:`SectionTimer` hook of
:func:`timed_track`): ``crop`` (search crop), ``backbone``
(backbone + adjust layer), ``heads`` (correlations and heads; the released path also
recomputes the exemplar kernels and the dense 3969-channel mask head), ``refine``
(refinement or mask head at the chosen RoW), ``post`` (decode, penalties, paste-back,
threshold, contours, box fit) and ``total``; plus the process CPU time per frame.

Paths: ``released`` (``Tracker(fast=False)``, the work the released code does), ``fast``
(the exact default), ``fold_all`` (BatchNorm folded everywhere + NHWC; not exact enough
for the equivalence tests). Precisions (``--precision``): ``fp32`` (exact), ``bf16``
(autocast; CPU or CUDA), ``fp16`` (CUDA only), see ``Tracker(precision=...)``; every
path is run at every precision. Batched multi-object throughput (object-frames/s) is
measured with :class:`~siammask_edu.multi.MultiTracker` for ``--objects``. Speed is
asserted here (``--min-speedup``, fp32 rows), never in unit tests.

    siammask-edu bench --presets sharp lite --threads 1 2 --paths released fast --json out.json
    siammask-edu bench --presets lite --threads 2 --paths fast --precision fp32 bf16

See book/11_speed.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone

import numpy as np
import torch

SEQUENCE = "car-shadow"
INIT_BOX = (313.0, 88.0, 342.0, 194.0)
PRESETS = ("sharp", "base", "lite")
PATHS = ("released", "fast", "fold_all")
PRECISIONS = ("fp32", "bf16", "fp16")  # = siammask_edu.precision.PRECISIONS (no torch import here)
SECTIONS = ("crop", "backbone", "heads", "refine", "post")
# step stage (siammask_edu.step.STAGES) -> section; "network" is split by SectionTimer
STAGE_SECTIONS = {"crop": "crop", "network": "heads", "choose": "post", "mask": "refine",
                  "fit": "post"}


def load_frames(n_frames: int = 40, sequence: str = SEQUENCE) -> list[np.ndarray]:
    """The first ``n_frames`` BGR uint8 frames of a DAVIS-2016 sequence (decoded once).

    Raises:
        FileNotFoundError: the shared data is not available.

    See book/11_speed.py.
    """
    import cv2

    from .paths import davis_sequence

    frames_dir, _ = davis_sequence(sequence)
    files = sorted(frames_dir.glob("*.jpg"))[:n_frames]
    if not files:
        raise FileNotFoundError(f"no frames in {frames_dir}")
    return [cv2.imread(str(p)) for p in files]


def load_model(preset: str, checkpoint: str | None = None):
    """The network of a preset: ``checkpoint`` if given; for ``sharp``/``base`` the seeded
    released checkpoint of the reference fixtures when present; for ``lite`` the weights
    shipped in the package when present (the network users run, refinement included);
    otherwise untrained (speed depends on the architecture, not on
    the values of the weights).

    Returns:
        ``(model, weights_description)``.

    Raises:
        ValueError: an unknown preset.
        FileNotFoundError: ``$SIAMMASK_EDU_WEIGHTS`` points to a missing file (``lite``).

    See book/11_speed.py.
    """
    from .checkpoint import load_checkpoint, load_released_checkpoint
    from .models import build_model

    if preset not in PRESETS and checkpoint is None:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    if checkpoint is not None:
        try:
            return load_released_checkpoint(checkpoint, preset), str(checkpoint)
        except (KeyError, RuntimeError, ValueError):  # our own checkpoint format
            return load_checkpoint(checkpoint), str(checkpoint)
    if preset in ("sharp", "base"):
        try:
            from .paths import reference_root

            ck = reference_root() / "fixtures" / "siammask_sharp_seed1.f16.pth"
            if ck.is_file():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return (load_released_checkpoint(ck, preset, strict=False),
                            "seeded released checkpoint (fixtures)")
        except FileNotFoundError:
            pass
    if preset == "lite":
        from importlib import resources

        from .tracker import WEIGHTS_ENV, pretrained_path

        try:
            with resources.as_file(pretrained_path("lite")) as p:
                return load_checkpoint(p), "shipped SiamMask-Lite weights"
        except FileNotFoundError:
            if os.environ.get(WEIGHTS_ENV):  # a wrong explicit location is an error
                raise
    torch.manual_seed(0)
    return build_model(preset), "untrained (build_model)"


class SectionTimer:
    """A :class:`~siammask_edu.step.StepHook` that times a step's stages into the
    benchmark's sections (milliseconds, device-synchronised like
    :class:`~siammask_edu.timing.Stopwatch`), one entry per section per step.

    Stages map to sections: ``crop`` -> ``crop``; ``network`` -> ``backbone`` (backbone
    and adjust layer, timed by forward hooks on ``model.backbone`` / ``model.neck``) and
    ``heads`` (the rest of the stage: kernels on the released path, correlations, heads,
    the dense mask head, float32 conversion); ``mask`` -> ``refine``; ``choose`` and
    ``fit`` -> ``post``. A model without a ``backbone`` module (onnxruntime: one fused
    search graph) has its whole network stage charged to ``backbone``.

    Time steps inside ``with timer.attached():`` (the forward hooks live that long) and
    call :meth:`flush` after each step.

    Args:
        sw: the :class:`~siammask_edu.timing.Stopwatch` whose ``ms`` receives the sections
            (its ``device`` is synchronised; a disabled stopwatch records nothing).
        model: the network the step runs (``tracker.model``).

    See book/11_speed.py.
    """

    def __init__(self, sw, model) -> None:
        self.sw, self.model = sw, model
        self._frame: dict[str, float] = {}
        self._handles: list = []
        self._t_backbone: float | None = None

    @contextmanager
    def attached(self):
        """Attach the backbone / neck forward hooks for the duration of the ``with`` block
        (removed on exit, also on an error)."""
        backbone = getattr(self.model, "backbone", None)
        neck = getattr(self.model, "neck", None)
        if (self.sw.enabled and isinstance(backbone, torch.nn.Module)
                and isinstance(neck, torch.nn.Module)):
            self._handles = [backbone.register_forward_pre_hook(self._backbone_start),
                             neck.register_forward_hook(self._backbone_end)]
        try:
            yield self
        finally:
            for h in self._handles:
                h.remove()
            self._handles = []

    def _now(self) -> float:
        from .timing import synchronize  # (bench imports nothing of the package at load)

        synchronize(self.sw.device)
        return time.perf_counter()

    def _backbone_start(self, module, args) -> None:
        self._t_backbone = self._now()

    def _backbone_end(self, module, args, output) -> None:
        if self._t_backbone is not None:
            self._add("backbone", 1000 * (self._now() - self._t_backbone))
            self._t_backbone = None

    def _add(self, section: str, ms: float) -> None:
        self._frame[section] = self._frame.get(section, 0.0) + ms

    def stage(self, name: str):
        @contextmanager
        def timed():
            if not self.sw.enabled:
                yield
                return
            before = self._frame.get("backbone", 0.0)
            t0 = self._now()
            try:
                yield
            finally:
                ms = 1000 * (self._now() - t0)
                if name == "network":  # what the backbone hooks did not claim is heads
                    inner = self._frame.get("backbone", 0.0) - before
                    if not self._handles:
                        self._add("backbone", ms)
                        ms = 0.0
                    ms -= inner
                self._add(STAGE_SECTIONS.get(name, name), ms)

        return timed()

    def record(self, target: int, name: str, value) -> None:
        return None

    def flush(self) -> None:
        """Append this step's section totals to ``sw.ms`` (each of ``SECTIONS``, 0 for a
        section the step did not reach) and start the next step."""
        if self.sw.enabled:
            for k in SECTIONS:
                self.sw.ms.setdefault(k, []).append(self._frame.get(k, 0.0))
        self._frame = {}


def timed_track(tracker, bgr: np.ndarray, sw) -> object:
    """One :meth:`Tracker.track` step with each section timed: the tracker's own step
    (:meth:`Tracker.step <siammask_edu.tracker.Tracker.step>`) run with a
    :class:`SectionTimer` hook, so the work and the result are ``track``'s.

    Args:
        tracker: an initialised :class:`~siammask_edu.tracker.Tracker` (any ``fast`` /
            ``precision``, any model backend); its state advances exactly as with
            ``tracker.track``.
        bgr (np.ndarray[H, W, 3] uint8): the frame, BGR (the tracker's colour order is
            not applied here).
        sw: a :class:`~siammask_edu.timing.Stopwatch`; the sections ``crop``,
            ``backbone``, ``heads``, ``refine`` and ``post`` are appended to ``sw.ms``
            once per call (milliseconds, device-synchronised).

    Returns:
        The :class:`~siammask_edu.tracker.TrackResult` of the frame.

    Raises:
        RuntimeError: before ``tracker.init``.
        ValueError: a frame size different from the init frame's.

    See book/11_speed.py.
    """
    timer = SectionTimer(sw, tracker.model)
    with timer.attached():
        result = tracker.step(bgr, hook=timer)
        timer.flush()  # only a completed step adds a row of sections
    return result


def run_single(preset: str, threads: int, path: str, n_frames: int = 40, warmup: int = 3,
               checkpoint: str | None = None, device: str = "cpu",
               precision: str = "fp32") -> dict:
    """Time one configuration in this process (see the module docstring); ``precision``
    as ``Tracker(precision=...)``.

    Returns:
        dict with ``precision``, per-section ``median_ms`` / ``mean_ms``, ``fps``,
        ``cpu_ms_per_frame``, ``peak_rss_mib``, ``template_ms`` and the run's environment.

    Raises:
        ValueError: an unknown path, preset or precision (or fp16 off CUDA).

    See book/11_speed.py.
    """
    from .timing import Stopwatch, peak_memory
    from .tracker import Tracker

    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; expected one of {PATHS}")
    torch.set_num_threads(threads)
    model, weights = load_model(preset, checkpoint)
    frames = load_frames(n_frames)
    fast = {"released": False, "fast": True, "fold_all": "fold_all"}[path]
    tracker = Tracker(model, "davis", device=device, color_order="bgr", fast=fast,
                      precision=precision)
    t0 = time.perf_counter()
    tracker.init(frames[0], INIT_BOX)
    template_ms = 1000 * (time.perf_counter() - t0)
    sw = Stopwatch(device)
    totals, cpu = [], []
    for i, f in enumerate(frames[1:]):
        if i == warmup:
            sw.reset()
            totals, cpu = [], []
        c0, w0 = time.process_time(), time.perf_counter()
        timed_track(tracker, f, sw)
        totals.append(1000 * (time.perf_counter() - w0))
        cpu.append(1000 * (time.process_time() - c0))
    res = {"kind": "single", "preset": preset, "threads": threads, "path": path,
           "precision": precision, "weights": weights, "frames_timed": len(totals),
           "warmup": warmup, "template_ms": template_ms}
    for k in SECTIONS:
        v = sw.ms.get(k, [0.0])
        res[f"{k}_median_ms"] = statistics.median(v)
        res[f"{k}_mean_ms"] = statistics.fmean(v)
    res["total_median_ms"] = statistics.median(totals)
    res["total_min_ms"] = min(totals)
    res["total_mean_ms"] = statistics.fmean(totals)
    res["fps"] = 1000.0 / res["total_mean_ms"]
    res["cpu_ms_per_frame"] = statistics.median(cpu)
    res.update(peak_memory(device))
    res.update(environment(device))
    return res


def run_multi(preset: str, threads: int, n_objects: int, n_frames: int = 20, warmup: int = 2,
              checkpoint: str | None = None, device: str = "cpu",
              precision: str = "fp32") -> dict:
    """Batched throughput: ``n_objects`` targets (boxes spread around the init box) tracked
    by one :class:`~siammask_edu.multi.MultiTracker` at ``precision``; object-frames per
    second.

    Raises:
        ValueError: an unknown preset or precision (or fp16 off CUDA).

    See book/11_speed.py.
    """
    from .multi import MultiTracker
    from .timing import peak_memory, synchronize

    torch.set_num_threads(threads)
    model, weights = load_model(preset, checkpoint)
    frames = load_frames(n_frames)
    x, y, w, h = INIT_BOX
    boxes = [(x + 40 * np.cos(k) - 20, y + 30 * np.sin(k), w * 0.6, h * 0.6)
             for k in range(n_objects)]
    mt = MultiTracker(model, "davis", device=device, color_order="bgr", precision=precision)
    mt.init(frames[0], boxes)
    times = []
    for i, f in enumerate(frames[1:]):
        t0 = time.perf_counter()
        mt.track(f)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    res = {"kind": "multi", "preset": preset, "threads": threads, "objects": n_objects,
           "precision": precision, "weights": weights, "frames_timed": len(times),
           "ms_per_frame": 1000 * statistics.fmean(times),
           "object_frames_per_s": n_objects * len(times) / sum(times)}
    res.update(peak_memory(device))
    res.update(environment(device))
    return res


def environment(device="cpu") -> dict:
    """Device, threads and versions of this run (recorded with every row).

    See book/11_speed.py.
    """
    import cv2

    dev = torch.device(device)
    name = platform.processor() or platform.machine()
    if dev.type == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(dev)
    return {"device": str(dev), "device_name": name, "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}


def _worker(spec: dict) -> dict:
    if spec["kind"] == "multi":
        return run_multi(spec["preset"], spec["threads"], spec["objects"], spec["frames"],
                         checkpoint=spec.get("checkpoint"), device=spec["device"],
                         precision=spec.get("precision", "fp32"))
    return run_single(spec["preset"], spec["threads"], spec["path"], spec["frames"],
                      checkpoint=spec.get("checkpoint"), device=spec["device"],
                      precision=spec.get("precision", "fp32"))


def run_isolated(spec: dict) -> dict:
    """Run one configuration in a fresh Python process and return its row.

    Raises:
        RuntimeError: the worker failed (its stderr is in the message).

    See book/11_speed.py.
    """
    proc = subprocess.run([sys.executable, "-m", "siammask_edu.bench", "--worker",
                           json.dumps(spec)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker failed for {spec}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# the configuration `siammask-edu track` runs by default (Tracker.from_pretrained("lite"))
TRACK_CONFIG = {"preset": "lite", "path": "fold_all", "precision": "fp32"}
SINGLE_HEADER = ("| preset | thr | path | precision | crop | backbone | heads | refine | "
                 "post | total (median) | fps | CPU ms/frame | peak RSS MiB | as `track` |")


def is_track_config(row: dict) -> bool:
    """True for a single-object row timing what ``siammask-edu track`` runs by default:
    the shipped SiamMask-Lite weights on the ``fold_all`` path (``Tracker.from_pretrained``)
    in fp32, no ``--checkpoint``.

    See book/11_speed.py.
    """
    return (row.get("kind") == "single" and not row.get("checkpoint")
            and all(row.get(k, "fp32" if k == "precision" else None) == v
                    for k, v in TRACK_CONFIG.items()))


def format_single_row(r: dict) -> str:
    """One line of the single-object table (:data:`SINGLE_HEADER`)."""
    return (f"| {r['preset']} | {r['threads']} | {r['path']} | "
            f"{r.get('precision', 'fp32')} | "
            + " | ".join(f"{r[f'{k}_median_ms']:.1f}" for k in SECTIONS)
            + f" | {r['total_median_ms']:.1f} | {r['fps']:.2f} | "
            f"{r['cpu_ms_per_frame']:.1f} | {r['peak_rss_mib']:.0f} | "
            f"{'yes' if is_track_config(r) else ''} |")


def format_multi_table(rows: list[dict]) -> str:
    """The batched table (object-frames/s) of the ``kind == "multi"`` rows ("" if none)."""
    multi = [r for r in rows if r["kind"] == "multi"]
    if not multi:
        return ""
    out = ["| preset | thr | N | precision | ms/frame | object-frames/s | peak RSS MiB |",
           "|" + "---|" * 7]
    for r in multi:
        out.append(f"| {r['preset']} | {r['threads']} | {r['objects']} | "
                   f"{r.get('precision', 'fp32')} | "
                   f"{r['ms_per_frame']:.1f} | {r['object_frames_per_s']:.2f} | "
                   f"{r['peak_rss_mib']:.0f} |")
    return "\n".join(out)


def format_table(rows: list[dict]) -> str:
    """Markdown tables of single-object rows (ms/frame split, fps, peak RSS; the last
    column says which rows time what ``siammask-edu track`` runs) and of batched rows
    (object-frames/s).

    See book/11_speed.py.
    """
    out = []
    single = [r for r in rows if r["kind"] == "single"]
    if single:
        out += [SINGLE_HEADER, "|" + "---|" * 14] + [format_single_row(r) for r in single]
    multi = format_multi_table(rows)
    if multi:
        out += ["", multi] if out else [multi]
    return "\n".join(out)


def add_bench_parser(sub) -> argparse.ArgumentParser:
    """Register ``siammask-edu bench`` on a sub-parsers object.

    See book/11_speed.py.
    """
    p = sub.add_parser("bench", help="time the tracker per frame (crop, backbone, heads, refine, post)",
                       description=__doc__.splitlines()[0])
    _add_arguments(p)
    p.set_defaults(func=_run_cli)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--presets", nargs="+", default=["sharp", "lite"], choices=PRESETS,
                   help="networks to time (lite: the shipped weights `track` runs)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2],
                   help="torch CPU threads, one run per value")
    p.add_argument("--paths", nargs="+", default=["released", "fast", "fold_all"],
                   choices=PATHS, help="tracker code paths: released (the released code's "
                   "work), fast (exact), fold_all (BatchNorm folded, NHWC: what `track` runs)")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=PRECISIONS,
                   help="network arithmetic(s) to time: fp32 (exact), bf16, fp16 (CUDA)")
    p.add_argument("--frames", type=int, default=40,
                   help="frames of car-shadow to track, <= 40 (default: 40)")
    p.add_argument("--objects", nargs="*", type=int, default=[],
                   help="batched multi-object runs with these N (e.g. 1 2 5 10)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ...")
    p.add_argument("--checkpoint", default=None, help="weights for every preset (default: "
                   "the shipped lite weights, the seeded released fixtures, else untrained)")
    p.add_argument("--json", default=None, help="write all rows to this JSON file")
    p.add_argument("--min-speedup", type=float, default=None,
                   help="fail (exit 1) unless fast is this much faster than released")


def _run_cli(args) -> int:
    from .precision import check_precision

    for prec in args.precision:  # fail before any worker starts (fp16 needs CUDA)
        check_precision(prec, args.device)
    rows, header_shown = [], False
    for preset in args.presets:
        for thr in args.threads:
            for path in args.paths:
                for prec in args.precision:
                    spec = {"kind": "single", "preset": preset, "threads": thr, "path": path,
                            "precision": prec, "frames": args.frames, "device": args.device,
                            "checkpoint": args.checkpoint}
                    rows.append(run_isolated(spec))
                    rows[-1].setdefault("checkpoint", args.checkpoint)
                    if not header_shown:  # one table, its rows printed as they come
                        print(SINGLE_HEADER + "\n|" + "---|" * 14, flush=True)
                        header_shown = True
                    print(format_single_row(rows[-1]), flush=True)
            for n in args.objects:
                for prec in args.precision:
                    spec = {"kind": "multi", "preset": preset, "threads": thr, "objects": n,
                            "precision": prec, "frames": min(args.frames, 20),
                            "device": args.device, "checkpoint": args.checkpoint}
                    rows.append(run_isolated(spec))
    multi = format_multi_table(rows)
    if multi:
        print(("\n" if header_shown else "") + multi)
    print(f"(`siammask-edu track` runs preset {TRACK_CONFIG['preset']}, path "
          f"{TRACK_CONFIG['path']}, {TRACK_CONFIG['precision']}, the shipped weights, torch's "
          f"default threads: {torch.get_num_threads()} here)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    if args.min_speedup is not None:
        ok = True
        for r in rows:
            if r["kind"] == "single" and r["path"] == "fast" and r["precision"] == "fp32":
                base = [q for q in rows if q["kind"] == "single" and q["path"] == "released"
                        and q["precision"] == "fp32"
                        and q["preset"] == r["preset"] and q["threads"] == r["threads"]]
                if base:
                    sp = base[0]["total_median_ms"] / r["total_median_ms"]
                    print(f"{r['preset']} {r['threads']} threads: speed-up {sp:.2f}x")
                    ok &= sp >= args.min_speedup
        return 0 if ok else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m siammask_edu.bench`` and ``benchmarks/bench.py``.

    See book/11_speed.py.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        print(json.dumps(_worker(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    _add_arguments(p)
    return _run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
