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
  no ``init``). ``"complete"`` says whether the run reached the end of the source (or
  ``--max-frames``); ``status`` is ``running``, ``complete``, ``stopped`` (unreadable
  frame), ``interrupted`` (Ctrl-C), ``terminated`` (SIGTERM/SIGHUP), ``quit`` (q in
  ``--show``) or ``failed`` (an error), and ``stopped`` gives the frame and the reason;
  ``unreadable_frames`` and ``decoded_with_warnings`` (frames whose decoder reported
  damage, e.g. libjpeg's "Corrupt JPEG data") list frames by number, name and message.

Results are written as the run goes: each mask when its frame is done, the text files and
``summary.json`` (``"complete": false``) atomically at most every :data:`FLUSH_SECONDS`, so
even a killed run leaves consistent files that say they are incomplete; on any error or
signal the run ends with every output of the frames before it (the overlay included).
An unreadable frame (corrupt, truncated, of another size) stops the run
(``--on-bad-frame stop``: exit 2 naming the file) or is recorded and skipped
(``--on-bad-frame skip``: ``nan`` lines, no mask, a grey stand-in overlay frame). A folder
holding a run is refused unless ``--overwrite`` (which also removes the temporary files a
killed run leaves); for an incomplete run the message says how to go on.

Bad input (missing source, an unknown sample name (with a suggestion), unreadable first
frame, bad ``--box``, a box whose centre is outside the frame, missing or corrupt
checkpoint) ends with one line on stderr and exit code 2 (what FFmpeg, OpenCV or libjpeg
print is captured, not shown); ``siammask-edu --debug ...`` shows the traceback instead.
Ctrl-C stops early, keeps what was tracked and exits with 130; SIGTERM/SIGHUP the same,
with 128 + the signal's number. Every option's ``--help`` shows its default.

To add a sub-command: write ``add_<name>_parser(subparsers)`` that calls
``set_defaults(func=cmd_<name>)``, and call it from :func:`build_parser`.

See book/07_online_tracker.py.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import itertools
import json
import os
import platform
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

BOX_STRATEGIES = ("minmax", "mbr", "opt")


class CliError(Exception):
    """An expected failure: its message is printed as one line, without a traceback."""


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or "default" in text.lower()
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(str(v) for v in default) or "none"
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


class _Parser(argparse.ArgumentParser):
    """One-line usage errors; help that shows every default (sub-commands inherit both)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line instead of usage + error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# Help for options several commands share, used where a command registers one without help.
_SHARED_HELP = {
    "--device": "torch device: cpu, cuda, cuda:1 ...",
    "--year": "DAVIS edition: 2016 (single object) or 2017 (several objects)",
    "--resolution": "DAVIS frame resolution folder (480p as in the papers, or Full-Resolution)",
}


def _fill_shared_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_shared_help(sub)
        elif not action.help:
            for opt in action.option_strings:
                if opt in _SHARED_HELP:
                    action.help = _SHARED_HELP[opt]
                    break


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
    p.add_argument("--on-bad-frame", choices=BAD_FRAME_CHOICES, default="stop",
                   help="what an unreadable frame (corrupt, truncated, of another size) "
                   "does: stop = end the run there, keeping every output of the frames "
                   "before it (summary.json: \"complete\": false, exit 2); skip = record it "
                   "in summary.json unreadable_frames (nan lines, no mask) and track on "
                   "(default: stop)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier run in --out (its temporary "
                   "files included)")
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
    from .checkpoint import add_convert_parser

    add_convert_parser(sub)
    _fill_shared_help(parser)
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

    if Path(source).exists() or source.isdigit():
        if box is None:
            raise CliError("--box x,y,w,h is required (the first-frame box of the object)")
        return source, box
    samples = data.available_samples()
    if source in samples:
        return str(data.sample_frames(source)), box if box is not None else data.sample_box(source)
    listed = f"shipped samples: {', '.join(samples) or 'none'}"
    if "/" in source or os.sep in source or Path(source).suffix:  # meant as a path
        raise CliError(f"frame source {source} does not exist (nor is it a shipped sample; "
                       f"{listed})")
    close = difflib.get_close_matches(source, samples, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise CliError(f"{source!r} does not exist and is not a shipped sample; {hint}{listed}")


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


# what a run writes in --out (besides masks/*.png); --overwrite removes them all
RESULT_FILES = ("summary.json", "boxes.txt", "polygons.txt", "overlay.mp4", "overlay.avi")
# a temporary file of io.atomic_path (".overlay.1a2b3c4d.tmp.mp4"), left by a killed run
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]+)?$")
FLUSH_SECONDS = 1.0  # boxes.txt, polygons.txt, summary.json lag the masks at most this long
BAD_FRAME_CHOICES = ("stop", "skip")


def _read_summary(out: Path) -> dict | None:
    try:
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return s if isinstance(s, dict) else None


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder (saying how to go on when the earlier run is
    incomplete); with ``--overwrite`` remove every output of the earlier run, the temporary
    files a killed run leaves included."""
    masks = out / "masks"
    old = [out / f for f in RESULT_FILES if (out / f).is_file()]
    for folder in (out, masks):
        if folder.is_dir():
            old += [p for p in folder.iterdir() if p.is_file() and _TEMPORARY.match(p.name)]
    if masks.is_dir():
        old += sorted(p for p in masks.glob("*.png") if not p.name.startswith("."))
    if old and not overwrite:
        summary = _read_summary(out)
        if summary is not None and summary.get("complete") is False or (
                summary is None and any(p.suffix == ".png" for p in old)):
            stopped = (summary or {}).get("stopped") or {}
            if stopped:
                what = f"it stopped at frame {stopped.get('frame')}: {stopped.get('reason')}"
            else:
                what = "it did not finish: killed, or still running?"
            skip = (" --on-bad-frame skip" if (summary or {}).get("status") == "stopped"
                    and (summary or {}).get("on_bad_frame") != "skip" else "")
            raise CliError(f"{out} holds an incomplete run ({what}); the frames it tracked are "
                           f"kept there. To track the source again into it, run the same "
                           f"command with --overwrite{skip}" + (" (--on-bad-frame skip tracks "
                           "past unreadable frames)" if skip else "")
                           + "; or choose another --out")
        raise CliError(f"{out} already holds the results of a run; choose another --out or "
                       "pass --overwrite")
    for f in old:
        f.unlink()
    masks.mkdir(parents=True, exist_ok=True)


class _Signalled(BaseException):
    """SIGTERM / SIGHUP during a run: raised by :func:`_signals_end_the_run`'s handler."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def _signals_end_the_run():
    """While the block runs, SIGTERM and SIGHUP raise :class:`_Signalled` (once; a second
    one is ignored, so that the outputs are finished); the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit = []

    def handler(signum, frame):
        if not hit:
            hit.append(signum)
            raise _Signalled(signum)

    old = {}
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            num = getattr(signal, name)
            old[num] = signal.signal(num, handler)
    try:
        yield
    finally:
        for num, h in old.items():
            signal.signal(num, h if h is not None else signal.SIG_DFL)


class _Run:
    """The outputs of one ``track`` run, written as it goes.

    Each mask PNG is written (atomically) when its frame is done; ``boxes.txt``,
    ``polygons.txt`` and ``summary.json`` (``"complete": false``, ``"status": "running"``)
    are rewritten atomically at most every :data:`FLUSH_SECONDS`; :meth:`finish` writes
    them a last time with the run's end (``complete``, ``status``, ``stopped``) and moves
    the overlay video into place. Line ``i`` of the text files is frame ``i`` of the source
    (``nan`` numbers for a frame skipped as unreadable, which gets no mask).
    """

    NAN_BOX = (float("nan"),) * 4
    NAN_POLYGON = np.full((4, 2), np.nan, np.float32)

    def __init__(self, out: Path, summary: dict, video, size_hw):
        self.out, self.base, self.video, self.size_hw = out, summary, video, size_hw
        self.polygons: list = []
        self.boxes: list = []
        self.scores: list[float] = []
        self.lost: list[int] = []
        self.unreadable: list[dict] = []
        self.warned: list[dict] = []
        self.stopped: dict | None = None
        self.status = "running"
        self.t_init = self.t_track = 0.0
        self.t0 = time.perf_counter()
        self._last_flush = -float("inf")

    @property
    def frames(self) -> int:
        """Frames with a line in the text files (= the index of the next frame)."""
        return len(self.boxes)

    def add(self, read, mask, polygon, box, shown, score=None, lost=False) -> None:
        """Record a frame: mask PNG now, text lines and overlay frame (``shown``)."""
        from . import io as sio

        t = self.frames
        sio.write_mask_png(self.out / "masks" / f"{t:05d}.png", mask)
        self.polygons.append(np.asarray(polygon, np.float32))
        self.boxes.append(tuple(float(v) for v in box))
        if score is not None:
            self.scores.append(float(score))
            if lost:
                self.lost.append(t)
        if read.warnings:
            self.warned.append({"frame": t, "name": read.name, "warnings": list(read.warnings)})
        if self.video is not None:
            self.video.write(shown)
        self.maybe_flush()

    def skip(self, read) -> None:
        """Record an unreadable frame: NaN lines, no mask, a stand-in overlay frame."""
        from .viz import render

        self.unreadable.append({"frame": read.index, "name": read.name, "reason": read.error})
        self.polygons.append(self.NAN_POLYGON)
        self.boxes.append(self.NAN_BOX)
        if self.video is not None:
            self.video.write(render.draw_unreadable(self.size_hw,
                                                    f"frame {read.index} unreadable"))
        self.maybe_flush()

    def stop(self, frame: int, reason: str, status: str, name: str | None = None) -> None:
        self.status = status
        self.stopped = {"frame": frame, "name": name, "reason": reason}

    def summary(self) -> dict:
        n = len(self.scores)
        fps = n / self.t_track if self.t_track > 0 else float("nan")
        s = dict(self.base)
        s.update({
            "complete": self.status == "complete", "status": self.status,
            "stopped": self.stopped, "frames": self.frames, "frames_tracked": n,
            "unreadable_frames": self.unreadable, "decoded_with_warnings": self.warned,
            "interrupted": self.status == "interrupted", "quit_key": self.status == "quit",
            "init_seconds": round(self.t_init, 4), "track_seconds": round(self.t_track, 4),
            "wall_seconds": round(time.perf_counter() - self.t0, 4),
            "fps": round(fps, 3) if n else None,
            "mean_score": float(np.mean(self.scores)) if self.scores else None,
            "scores": self.scores, "lost_frames": self.lost,
        })
        return s

    def flush(self) -> None:
        """Rewrite the text files and summary.json (each atomically)."""
        from . import io as sio

        sio.write_vot_polygons(self.out / "polygons.txt", self.polygons)
        sio.write_boxes_xywh(self.out / "boxes.txt", self.boxes)
        with sio.atomic_open(self.out / "summary.json", "w") as fh:
            json.dump(self.summary(), fh, indent=2)
        self._last_flush = time.perf_counter()

    def maybe_flush(self) -> None:
        if time.perf_counter() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def finish(self) -> None:
        """Close the overlay (kept: it shows the frames done) and write the last state."""
        if self.status == "running":
            self.status = "complete"
        if self.video is not None:
            try:
                self.video.close()
            finally:
                self.base["video"] = self.video.path.name if self.video.n_frames else None
        self.flush()

    def end_line(self) -> str:
        s = self.summary()
        n = s["frames_tracked"]
        line = f"tracked {n} frames in {self.t_track:.2f} s"
        if n:
            line += f" ({s['fps']:.1f} fps)"
        if self.lost:
            line += (f"; {len(self.lost)} frame(s) flagged lost (score below "
                     f"{s['lost_score']:.3f}: see summary.json lost_frames)")
        if self.unreadable:
            names = ", ".join(u["name"] for u in self.unreadable[:5])
            more = ", ..." if len(self.unreadable) > 5 else ""
            line += (f"; {len(self.unreadable)} unreadable frame(s) skipped ({names}{more}: "
                     "see summary.json unreadable_frames)")
        if self.warned:
            w = self.warned[0]
            line += (f"; {len(self.warned)} frame(s) decoded with warnings, the picture may be "
                     f"damaged ({w['name']}: {w['warnings'][0]}"
                     + (", ..." if len(self.warned) > 1 else "")
                     + ": see summary.json decoded_with_warnings)")
        if self.status != "complete":
            st = self.stopped or {}
            line += f"; INCOMPLETE ({self.status} at frame {st.get('frame')})"
        return f"{line} -> {self.out}"


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
    reads = source.read_each()
    if args.max_frames:
        reads = itertools.islice(reads, args.max_frames)
    first = next(reads, None)
    if first is None:
        raise CliError(f"{args.source}: no frame could be read")
    if first.image is None:  # the box is given on frame 0: it must be readable
        raise CliError(f"{first.error} (the first frame, which --box refers to)")
    h, w = first.image.shape[:2]
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
    video = None if args.no_video else sio.VideoWriter(out / "overlay.mp4", fps=source.fps or 25.0)
    run = _Run(out, {
        "source": str(args.source), "source_kind": source.kind, "frame_size_hw": [h, w],
        "source_fps": source.fps, "init_box_xywh": list(box0),
        "on_bad_frame": args.on_bad_frame, "lost_score": config.lost_score,
        "config": {"preset": args.config, "box_strategy": config.box_strategy,
                   "penalty_k": config.penalty_k, "window_influence": config.window_influence,
                   "lr": config.lr, "seg_thr": config.seg_thr},
        "checkpoint": str(args.checkpoint) if args.checkpoint else "lite (shipped)",
        "device": args.device, "precision": args.precision,
        "torch_threads": _torch_threads(),
        "video": None, "versions": _versions(),  # the overlay's name once it is in place
    }, video, (h, w))
    run.flush()  # from now on the folder says: a run, not complete
    total = None if source.kind == "camera" else len(source) or None  # 0: count unknown
    if total and args.max_frames:
        total = min(total, args.max_frames)
    bar = tqdm(total=total, unit="frame", disable=args.quiet, desc="track", file=sys.stderr)
    failure, exit_code = None, 0
    try:
        with _signals_end_the_run():
            try:
                tic = time.perf_counter()
                tracker.init(first.image, box0)
                run.t_init = time.perf_counter() - tic  # fps counts track() calls only
                shown = render.draw_polygon(first.image, _box_polygon(box0), render.BOX_COLOR, 2)
                run.add(first, mask0, _box_polygon(box0), box0, shown)
                bar.update(1)
                if window is not None:
                    window.show(shown)
                for read in reads:
                    if read.image is None:
                        if args.on_bad_frame == "stop":
                            run.stop(read.index, read.error, "stopped", read.name)
                            failure = CliError(
                                f"{read.error}; frames 0-{read.index - 1} are kept in {out} "
                                "(summary.json says \"complete\": false); to track past "
                                "unreadable frames rerun with --overwrite --on-bad-frame skip")
                            exit_code = 2
                            break
                        run.skip(read)
                        bar.update(1)
                        continue
                    tic = time.perf_counter()
                    result = tracker.track(read.image)
                    run.t_track += time.perf_counter() - tic
                    shown = render.draw_result(read.image, result)
                    run.add(read, result.mask, result.polygon, result.box, shown,
                            score=result.score, lost=getattr(result, "lost", False))
                    bar.update(1)
                    if window is not None and not window.show(shown):
                        run.stop(run.frames, "q pressed in the --show window", "quit")
                        break
            except KeyboardInterrupt:
                run.stop(run.frames, "interrupted (Ctrl-C)", "interrupted")
                exit_code = 130
            except _Signalled as sig:
                run.stop(run.frames, f"terminated by {sig}", "terminated")
                failure, exit_code = sig, 128 + sig.signum
            except BaseException as exc:
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())
                run.stop(run.frames, reason, "failed")
                with contextlib.suppress(Exception):  # the error that stopped the run wins
                    run.finish()
                raise
            run.finish()
    finally:
        bar.close()
        if window is not None:
            window.close()
    print(run.end_line())
    if isinstance(failure, _Signalled):
        print(f"siammask-edu track: {failure}: stopped at frame {run.stopped['frame']}; "
              f"frames 0-{run.frames - 1} are kept in {out} (summary.json says "
              "\"complete\": false)", file=sys.stderr)
    elif failure is not None:
        raise failure
    return exit_code


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
