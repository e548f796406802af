"""The ``siammask-edu`` command line: one sub-command per task.

``siammask-edu track SOURCE --box x,y,w,h [--checkpoint PATH] --out DIR`` tracks one object
through a folder of images, a video file, a camera or a shipped sample (``bunny``: its
first-frame box is the default ``--box``) with the shipped SiamMask-Lite weights
(:meth:`~siammask_edu.Tracker.from_pretrained`) or ``--checkpoint``, and writes, in ``DIR``:

* ``masks/00000.png`` ... one 0/255 PNG per frame (frame 0: the initialisation box, filled,
  since no mask is given at the start);
* ``polygons.txt``: one rotated box per frame, VOT 8-number lines (frame 0: the corners of
  the initialisation box);
* ``boxes.txt``: one ``x,y,w,h`` per frame (frame 0: the initialisation box);
* ``overlay.mp4`` (``overlay.avi`` if the mp4 codec is missing): frames with mask, rotated
  box, axis-aligned box and score drawn;
* ``summary.json``: frame count, speed, configuration, checkpoint, precision, torch threads,
  versions, per-frame scores and ``lost_frames`` (frames whose score fell below the
  tracker's ``lost_score``; the overlay marks them ``LOST``). ``fps`` is
  frames tracked after the first divided by the time spent in ``Tracker.track`` (no I/O,
  no ``init``).

Bad input (missing source, unreadable frame, bad ``--box``, a box whose centre is outside
the frame, missing or corrupt checkpoint) ends with one line on stderr and exit code 2;
``siammask-edu --debug ...`` shows the traceback instead. Ctrl-C stops early, keeps what
was tracked and exits with 130.

To add a sub-command: write ``add_<name>_parser(subparsers)`` that calls
``set_defaults(func=cmd_<name>)``, and call it from :func:`build_parser`.

See book/07_online_tracker.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

BOX_STRATEGIES = ("minmax", "mbr", "opt")


class CliError(Exception):
    """An expected failure: its message is printed as one line, without a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """Parse ``"x,y,w,h"`` (pixels; top-left corner and size) into four floats.

    Raises:
        argparse.ArgumentTypeError: unless four finite numbers with ``w, h > 0``.

    See book/07_online_tracker.py.
    """
    parts = text.replace(" ", "").split(",")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or not all(np.isfinite(vals)):
        raise argparse.ArgumentTypeError(f"expected x,y,w,h (four numbers), got {text!r}")
    if vals[2] <= 0 or vals[3] <= 0:
        raise argparse.ArgumentTypeError(f"box width and height must be > 0, got {text!r}")
    return vals


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


def add_track_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``track`` on the sub-parsers of :func:`build_parser`."""
    from .config import TRACKER_PRESETS

    p = subparsers.add_parser(
        "track", help="track one object through a folder, video or camera",
        description="Track one object given by its first-frame box; write masks, rotated "
                    "boxes, axis-aligned boxes, an overlay video and a summary.")
    p.add_argument("source", help="folder of jpg/png/bmp frames, video file, camera index, "
                   "or the name of a shipped sample (e.g. bunny)")
    p.add_argument("--box", type=parse_box, metavar="x,y,w,h",
                   help="first-frame box: top-left corner and size, pixels (default for a "
                   "shipped sample: its first groundtruth box; required otherwise)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="released or siammask-edu checkpoint (default: the SiamMask-Lite "
                   "weights shipped in the package)")
    p.add_argument("--config", default="davis", choices=TRACKER_PRESETS,
                   help="tracker hyper-parameter preset (default: davis)")
    p.add_argument("--box-strategy", choices=BOX_STRATEGIES, default=None,
                   help="rotated-box fitting (default: the preset's, mbr = released)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--max-frames", type=_positive_int, metavar="N",
                   help="read at most N frames, the first included")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="network arithmetic: fp32 (default, exact), bf16 (autocast, CPU or "
                   "CUDA), fp16 (CUDA only); see Tracker(precision=...)")
    p.add_argument("--show", action="store_true", help="show the overlay in a window (q quits)")
    p.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_track)
    return p


def add_data_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``data get`` and ``data list`` (:mod:`siammask_edu.data_get`)."""
    p = subparsers.add_parser(
        "data", help="download a dataset and build the project's layout",
        description="Download the official archives of a dataset, check and extract them, "
                    "and build the layout the library reads (README, section Data).")
    cmds = p.add_subparsers(dest="data_command", metavar="get|list", required=True)
    g = cmds.add_parser("get", help="download, check, extract and build one dataset")
    g.add_argument("name", help="dataset: davis2016, davis2017, coco128, vot2016, vot2018 "
                   "(see `siammask-edu data list`)")
    g.add_argument("--root", metavar="DIR", help="dataset root to write into (default: "
                   "$SIAMMASK_EDU_DATA, else the root siammask_edu.data_root() finds)")
    g.add_argument("--archive", action="append", default=[], metavar="PATH",
                   help="an archive downloaded by hand (official file name), used instead "
                   "of downloading it; repeat for several")
    g.add_argument("--sequences", metavar="A,B", help="VOT only: these sequences (default all)")
    g.add_argument("--cache", metavar="DIR", help="where downloads are kept and resumed "
                   "(default: ROOT/.downloads)")
    g.add_argument("--mirror", metavar="URL", help="base URL replacing the official one "
                   "(default: $SIAMMASK_EDU_DATA_MIRROR)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.set_defaults(func=cmd_data_get)
    ls = cmds.add_parser("list", help="the known datasets, their URLs, sizes and licences")
    ls.set_defaults(func=cmd_data_list)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The ``siammask-edu`` parser with all its sub-commands.

    See book/07_online_tracker.py.
    """
    from . import __version__

    parser = _Parser(prog="siammask-edu", description="SiamMask, taught and implemented.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_track_parser(sub)
    from .bench import add_bench_parser
    from .cli_eval import add_benchmark_parser, add_eval_parser, add_train_parser

    add_eval_parser(sub)
    add_train_parser(sub)
    add_benchmark_parser(sub)
    add_bench_parser(sub)
    add_data_parser(sub)
    return parser


def _join_negative_box(argv: list[str]) -> list[str]:
    """``--box -10,5,40,40`` -> ``--box=-10,5,40,40``: argparse would read ``-10,...`` as an
    option, since it is not a plain negative number."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--box" and i + 1 < len(argv) and argv[i + 1][:1] == "-" \
                and argv[i + 1][1:2].isdigit():
            out.append(f"--box={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 130 interrupted).

    See book/07_online_tracker.py.
    """
    parser = build_parser()
    argv = _join_negative_box(sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("siammask-edu: interrupted", file=sys.stderr)
        return 130
    except (CliError, OSError, ValueError, ImportError) as exc:
        if args.debug:
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"siammask-edu {args.command}: error: {msg}", file=sys.stderr)
        return 2


# -- track -----------------------------------------------------------------------------------


def _make_tracker(checkpoint: str | None, config: str, device: str, precision: str = "fp32",
                  box_strategy: str | None = None):
    """Build the real tracker (imported here so that this module imports without it):
    ``checkpoint`` or, for ``None``, the shipped SiamMask-Lite weights; ``precision`` as
    :class:`~siammask_edu.Tracker`.

    ``config`` is a preset *name*: given a name, ``from_pretrained`` sets the thresholds
    calibrated for the shipped weights (``seg_thr``, ``lost_score``), which a
    ``TrackerConfig`` object would override. ``box_strategy`` then replaces the preset's.
    """
    from .tracker import Tracker

    if checkpoint is None:
        tracker = Tracker.from_pretrained("lite", config=config, device=device,
                                          precision=precision)
    else:
        tracker = Tracker.from_checkpoint(checkpoint, config=config, device=device,
                                          precision=precision)
    if box_strategy is not None:
        tracker.config = tracker.config.replace(box_strategy=box_strategy)
    return tracker


def _resolve_source(source: str, box):
    """``(source, box)``: a shipped sample's name becomes its frames (folder or video) and,
    without ``--box``, its first groundtruth box."""
    from . import data

    if not Path(source).exists() and not source.isdigit() and source in data.available_samples():
        return str(data.sample_frames(source)), box if box is not None else data.sample_box(source)
    if box is None:
        raise CliError("--box x,y,w,h is required (the first-frame box of the object)")
    return source, box


def _check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CliError(f"--device {device}: CUDA is not available on this machine")
    elif device not in ("cpu", "mps"):
        raise CliError(f"--device {device!r}: expected cpu, mps, cuda or cuda:N")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _check_precision(precision: str, device: str) -> None:
    from .precision import check_precision

    try:
        check_precision(precision, device)
    except ValueError as exc:
        raise CliError(f"--precision {precision}: {exc}") from None


class _Window:
    """``cv2.imshow`` with clear errors when there is no GUI or display."""

    name = "siammask-edu"

    def __init__(self):
        import cv2

        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                     or os.environ.get("WAYLAND_DISPLAY")):
            raise CliError("--show needs a display (DISPLAY is not set); drop --show and "
                           "watch overlay.mp4")
        try:
            cv2.namedWindow(self.name, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise CliError("--show needs OpenCV with GUI support (this is a headless build, "
                           "e.g. opencv-python-headless); drop --show and watch overlay.mp4"
                           ) from None
        self.cv2 = cv2

    def show(self, rgb: np.ndarray) -> bool:
        """Show a frame; False once the user pressed q or Esc."""
        self.cv2.imshow(self.name, self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2BGR))
        return self.cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        self.cv2.destroyWindow(self.name)


def _box_polygon(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def _versions() -> dict:
    import cv2
    import torch

    from . import __version__

    return {"siammask_edu": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__}


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder; with ``--overwrite`` remove the old masks."""
    old = sorted((out / "masks").glob("*.png")) if (out / "masks").is_dir() else []
    if (old or (out / "summary.json").exists()) and not overwrite:
        raise CliError(f"{out} already holds the results of a run; choose another --out or "
                       "pass --overwrite")
    for f in old:
        f.unlink()
    (out / "masks").mkdir(parents=True, exist_ok=True)


def cmd_track(args: argparse.Namespace) -> int:
    """``siammask-edu track``: see the module docstring for what it writes.

    See book/07_online_tracker.py.
    """
    from tqdm import tqdm

    from . import io as sio
    from .config import tracker_config
    from .viz import render

    args.source, args.box = _resolve_source(args.source, args.box)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise CliError(f"checkpoint {args.checkpoint} does not exist")
    source = sio.FrameSource(args.source)
    frames = iter(source)
    if args.max_frames:
        frames = itertools.islice(frames, args.max_frames)
    first = next(frames, None)
    if first is None:
        raise CliError(f"{args.source}: no frame could be read")
    h, w = first.shape[:2]
    x, y, bw, bh = args.box
    if not (0 <= x + bw / 2 <= w and 0 <= y + bh / 2 <= h):  # the tracker clamps the centre
        raise CliError(f"--box {x:g},{y:g},{bw:g},{bh:g}: its centre is outside the {w}x{h} "
                       "frame (x,y is the top-left corner, pixels)")
    _check_device(args.device)
    _check_precision(args.precision, args.device)
    window = _Window() if args.show else None

    tracker_config(args.config)  # an unknown preset fails here, before any file is read
    try:
        tracker = _make_tracker(args.checkpoint, args.config, args.device,
                                precision=args.precision, box_strategy=args.box_strategy)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    config = tracker.config

    out = Path(args.out)
    _prepare_out(out, args.overwrite)
    box0 = (float(x), float(y), float(bw), float(bh))
    mask0 = np.zeros((h, w), bool)
    r0, r1 = (int(np.clip(round(v), 0, h)) for v in (y, y + bh))
    c0, c1 = (int(np.clip(round(v), 0, w)) for v in (x, x + bw))
    mask0[r0:r1, c0:c1] = True
    polygons, boxes, scores, lost = [_box_polygon(box0)], [box0], [], []
    video = None if args.no_video else sio.VideoWriter(out / "overlay.mp4", fps=source.fps or 25.0)
    interrupted, quit_key, t_init, t_track, t0 = False, False, 0.0, 0.0, time.perf_counter()
    total = None if source.kind == "camera" else len(source) or None  # 0: count unknown
    if total and args.max_frames:
        total = min(total, args.max_frames)
    bar = tqdm(total=total, unit="frame", disable=args.quiet, desc="track", file=sys.stderr)
    try:
        tic = time.perf_counter()
        tracker.init(first, box0)
        t_init = time.perf_counter() - tic  # not in t_track: fps counts track() calls only
        sio.write_mask_png(out / "masks" / "00000.png", mask0)
        shown = render.draw_polygon(first, polygons[0], render.BOX_COLOR, 2)
        if video is not None:
            video.write(shown)
        if window is not None:
            window.show(shown)
        bar.update(1)
        for t, frame in enumerate(frames, start=1):
            tic = time.perf_counter()
            result = tracker.track(frame)
            t_track += time.perf_counter() - tic
            sio.write_mask_png(out / "masks" / f"{t:05d}.png", result.mask)
            polygons.append(np.asarray(result.polygon, np.float32))
            boxes.append(tuple(float(v) for v in result.box))
            scores.append(float(result.score))
            if getattr(result, "lost", False):
                lost.append(t)
            shown = render.draw_result(frame, result)
            if video is not None:
                video.write(shown)
            bar.update(1)
            if window is not None and not window.show(shown):
                quit_key = True
                break
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        if video is not None:
            video.close(discard=True)
        raise
    finally:
        bar.close()
        if window is not None:
            window.close()
    if video is not None:
        video.close()
    wall = time.perf_counter() - t0

    n_tracked = len(scores)
    fps = n_tracked / t_track if t_track > 0 else float("nan")
    sio.write_vot_polygons(out / "polygons.txt", polygons)
    sio.write_boxes_xywh(out / "boxes.txt", boxes)
    summary = {
        "source": str(args.source), "source_kind": source.kind, "frame_size_hw": [h, w],
        "source_fps": source.fps, "frames": len(boxes), "frames_tracked": n_tracked,
        "init_box_xywh": list(box0), "interrupted": interrupted, "quit_key": quit_key,
        "init_seconds": round(t_init, 4), "track_seconds": round(t_track, 4),
        "wall_seconds": round(wall, 4),
        "fps": round(fps, 3) if n_tracked else None,
        "mean_score": float(np.mean(scores)) if scores else None, "scores": scores,
        "lost_frames": lost, "lost_score": config.lost_score,
        "config": {"preset": args.config, "box_strategy": config.box_strategy,
                   "penalty_k": config.penalty_k, "window_influence": config.window_influence,
                   "lr": config.lr, "seg_thr": config.seg_thr},
        "checkpoint": str(args.checkpoint) if args.checkpoint else "lite (shipped)",
        "device": args.device, "precision": args.precision,
        "torch_threads": _torch_threads(),
        "video": video.path.name if video is not None else None, "versions": _versions(),
    }
    with sio.atomic_open(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2)
    speed = f" ({fps:.1f} fps)" if n_tracked else ""
    if lost:
        speed += (f"; {len(lost)} frame(s) flagged lost (score below "
                  f"{summary['lost_score']:.3f}: see summary.json lost_frames)")
    print(f"tracked {n_tracked} frames in {t_track:.2f} s{speed} -> {out}")
    return 130 if interrupted else 0


# -- data ------------------------------------------------------------------------------------


def cmd_data_get(args: argparse.Namespace) -> int:
    """``siammask-edu data get NAME``: :func:`siammask_edu.data_get.get_dataset`."""
    from .data_get import get_dataset
    from .paths import ENV_VAR

    seqs = [s for s in args.sequences.split(",") if s] if args.sequences else None
    target = get_dataset(args.name, args.root, archives=args.archive, mirror=args.mirror,
                         cache=args.cache, sequences=seqs, progress=not args.quiet,
                         log=lambda msg: print(msg, file=sys.stderr))
    print(f"{args.name}: ready in {target}")
    if not os.environ.get(ENV_VAR) and args.root:
        print(f"(the library finds it with {ENV_VAR}={target.parent} or data_root(root=...))")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    """``siammask-edu data list``: the registry of :mod:`siammask_edu.data_get`."""
    from .data_get import describe

    for d in describe():
        print(f"{d['name']:10} -> ROOT/{d['folder']}/  {d['title']}")
        for a in d["archives"]:
            check = f"sha256 {a['sha256'][:12]}..." if a["sha256"] else "no published checksum"
            opt = "" if a["required"] else ", optional (--archive)"
            print(f"{'':12}{a['url']}  [{a['approx_size']}; {check}{opt}]")
        print(f"{'':12}licence: {d['licence']}; {d['homepage']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
