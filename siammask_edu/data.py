"""Sample data: a synthetic sequence with exact masks, and the samples shipped in the repo.

:func:`make_synthetic_sequence` draws a textured ellipse (or rectangle) that moves, turns
and grows/shrinks over a textured background. Every value is a deterministic function of
the arguments, and the mask of each frame is exactly the set of pixels painted with the
object's texture. :func:`load_sample` reads the small sequences kept in ``data_samples/``.

Pixel convention: pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)`` and belongs
to the object when its centre ``(j + 0.5, i + 0.5)`` does.

See book/07_online_tracker.py.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import io as sio

SAMPLES_DIR = "data_samples"


@dataclass(frozen=True)
class SyntheticSequence:
    """Frames and exact ground truth of :func:`make_synthetic_sequence`.

    Attributes:
        frames: np.ndarray[T, H, W, 3] uint8 RGB.
        masks: np.ndarray[T, H, W] bool, exact object masks.
        box: ``(x, y, w, h)`` float, the first frame's axis-aligned box (tight around
            ``masks[0]``, ``cv2.boundingRect``), frame pixels.
        boxes: np.ndarray[T, 4] float32, ``x, y, w, h`` of every mask.
        polygons: np.ndarray[T, 4, 2] float32, the exact rotated box of the shape: the
            object-frame corners (-a, -b), (a, -b), (a, b), (-a, b) mapped to the image
            (clockwise in image coordinates).
    """

    frames: np.ndarray
    masks: np.ndarray
    box: tuple[float, float, float, float]
    boxes: np.ndarray
    polygons: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int,
                  channels: int = 3) -> np.ndarray:
    """Values in [0, 1]: uniform noise on a coarse grid, upsampled bicubically."""
    h, w = size
    coarse = rng.random((max(2, h * cells // max(h, w)), max(2, w * cells // max(h, w)),
                         channels)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.55 * _smooth_noise(rng, size, 6) + 0.25 * _smooth_noise(rng, size, 24)
    waves = 0.12 * np.sin(xx / 9.0 + 2.0 * np.sin(yy / 23.0))[..., None]
    tint = np.array([0.35, 0.55, 0.65], np.float32)  # cool colours; the object is warm
    return np.clip(255.0 * (base * tint / tint.mean() * 0.8 + waves + 0.1), 0, 255)


def make_synthetic_sequence(n_frames: int = 40, size: tuple[int, int] = (240, 320),
                            seed: int = 0, shape: str = "ellipse",
                            axes: tuple[float, float] = (0.15, 0.085),
                            travel: tuple[float, float] = (0.26, 0.2),
                            turns: float = 0.25, scale_range: float = 0.25
                            ) -> SyntheticSequence:
    """A textured shape moving, rotating and scaling over a textured background.

    The centre follows a Lissajous path (``x`` one period, ``y`` two periods over the
    sequence), the angle grows linearly by ``turns`` full turns, and the size is scaled by
    ``1 + scale_range * sin(2 pi t / T)``. The object's texture (warm stripes and checks)
    moves rigidly with it; the background (cool smooth noise and waves) is static.

    Args:
        n_frames: T, number of frames (>= 1).
        size: ``(H, W)`` of the frames, pixels.
        seed: seed of the textures and colours (the motion does not depend on it).
        shape: ``"ellipse"`` or ``"rectangle"``.
        axes: semi-axes ``(a, b)`` as fractions of ``min(H, W)``.
        travel: amplitude of the centre's motion as fractions of ``(W, H)``.
        turns: total rotation over the sequence, in full turns (clockwise on screen).
        scale_range: relative amplitude of the size change.

    Returns:
        SyntheticSequence: frames (RGB uint8), exact masks, the first-frame box
        ``(x, y, w, h)``, all boxes and the exact rotated boxes.

    Raises:
        ValueError: for an unknown shape, ``n_frames < 1`` or a shape that leaves the frame.

    See book/07_online_tracker.py.
    """
    if shape not in ("ellipse", "rectangle"):
        raise ValueError(f"shape must be 'ellipse' or 'rectangle', got {shape!r}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    h, w = size
    a0, b0 = axes[0] * min(h, w), axes[1] * min(h, w)
    reach = np.hypot(a0, b0) * (1 + scale_range)
    if travel[0] * w + reach > w / 2 or travel[1] * h + reach > h / 2:
        raise ValueError("the shape would leave the frame: reduce axes, travel or scale_range")
    rng = np.random.default_rng(seed)
    bg = _background(rng, size)
    c1 = rng.uniform([200, 30, 20], [255, 80, 60]).astype(np.float32)  # red
    c2 = rng.uniform([230, 170, 30], [255, 230, 90]).astype(np.float32)  # yellow
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5  # pixel centres
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    masks = np.empty((n_frames, h, w), bool)
    polygons = np.empty((n_frames, 4, 2), np.float32)
    for t in range(n_frames):
        phase = 2 * np.pi * t / n_frames
        cx, cy = w / 2 + travel[0] * w * np.sin(phase), h / 2 + travel[1] * h * np.sin(2 * phase)
        theta = 2 * np.pi * turns * t / n_frames
        s = 1 + scale_range * np.sin(phase)
        a, b = a0 * s, b0 * s
        cos, sin = np.cos(theta), np.sin(theta)
        u = cos * (xx - cx) + sin * (yy - cy)  # object coordinates of each pixel centre
        v = -sin * (xx - cx) + cos * (yy - cy)
        if shape == "ellipse":
            inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        else:
            inside = (np.abs(u) <= a) & (np.abs(v) <= b)
        un, vn = u / s, v / s  # texture coordinates: the texture scales with the object
        stripes = 0.5 + 0.5 * np.sin(un / 2.5)
        checks = ((np.floor(un / 9) + np.floor(vn / 9)) % 2)
        mix = stripes[..., None]
        tex = (mix * c1 + (1 - mix) * c2) * (0.75 + 0.25 * checks[..., None])
        frames[t] = np.where(inside[..., None], tex, bg).round().clip(0, 255).astype(np.uint8)
        masks[t] = inside
        corners = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
        polygons[t] = corners @ np.array([[cos, sin], [-sin, cos]]) + [cx, cy]
    boxes = np.array([cv2.boundingRect(m.astype(np.uint8)) for m in masks], np.float32)
    return SyntheticSequence(frames, masks, tuple(float(x) for x in boxes[0]), boxes, polygons)


def save_synthetic_sequence(folder: str | os.PathLike, frame_format: str = "jpg",
                            jpeg_quality: int = 90, **kwargs) -> Path:
    """Write a synthetic sequence in the ``data_samples/`` layout.

    Writes ``frames/00000.<frame_format>``, ``masks/00000.png`` (0/255),
    ``groundtruth.txt`` (one ``x,y,w,h`` line per frame: the first line is the
    initialisation box) and ``groundtruth_polygons.txt`` (exact rotated boxes, VOT 8-number
    lines). Every file is written atomically.

    Args:
        folder: created if missing.
        frame_format: ``"jpg"`` or ``"png"``.
        jpeg_quality: 0-100.
        **kwargs: passed to :func:`make_synthetic_sequence`.

    Returns:
        Path: ``folder``.

    See book/07_online_tracker.py.
    """
    seq = make_synthetic_sequence(**kwargs)
    root = Path(folder)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for t, (frame, mask) in enumerate(zip(seq.frames, seq.masks)):
        sio.write_image(root / "frames" / f"{t:05d}.{frame_format}", frame, jpeg_quality)
        sio.write_mask_png(root / "masks" / f"{t:05d}.png", mask)
    sio.write_boxes_xywh(root / "groundtruth.txt", seq.boxes)
    sio.write_vot_polygons(root / "groundtruth_polygons.txt", seq.polygons)
    return root


# -- shipped samples -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A sequence from ``data_samples/``.

    Attributes:
        name: folder name, e.g. ``"synthetic_ellipse"``.
        path: the sample's folder.
        frames: list of np.ndarray[H, W, 3] uint8 RGB.
        box: ``(x, y, w, h)`` float, first-frame box (first line of ``groundtruth.txt``).
        boxes: np.ndarray[T, 4] float32 (all lines of ``groundtruth.txt``; an 8-number
            polygon line becomes its min/max box).
        masks: list of np.ndarray[H, W] bool, or ``None`` if the sample has no masks.
        fps: frames per second of a video sample, else ``None``.
    """

    name: str
    path: Path
    frames: list
    box: tuple[float, float, float, float]
    boxes: np.ndarray
    masks: list | None
    fps: float | None = None

    def __len__(self) -> int:
        return len(self.frames)


def _sample_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [d for d in (here / SAMPLES_DIR, here.parent / SAMPLES_DIR) if d.is_dir()]


def available_samples() -> list[str]:
    """Names of the samples found in ``data_samples/`` (installed package, then checkout).

    See book/07_online_tracker.py.
    """
    names = set()
    for d in _sample_dirs():
        names.update(p.name for p in d.iterdir()
                     if p.is_dir() and (p / "groundtruth.txt").is_file())
    return sorted(names)


def sample_path(name: str) -> Path:
    """Folder of a shipped sample.

    Raises:
        FileNotFoundError: listing the available names if there is no such sample.

    See book/07_online_tracker.py.
    """
    for d in _sample_dirs():
        if (d / name / "groundtruth.txt").is_file():
            return d / name
    names = available_samples()
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise FileNotFoundError(
        f"no sample named {name!r}; {hint}available: {', '.join(names) or 'none'}")


def _read_boxes(path: Path) -> np.ndarray:
    rows = []
    for line in path.read_text().splitlines():
        vals = [float(v) for v in line.replace(",", " ").split()]
        if len(vals) == 8:
            xs, ys = vals[0::2], vals[1::2]
            vals = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if len(vals) != 4:
            raise ValueError(f"{path}: line {line!r} is not x,y,w,h nor 8 polygon numbers")
        rows.append(vals)
    return np.array(rows, np.float32).reshape(-1, 4)


def sample_frames(name: str) -> Path:
    """Where a shipped sample's frames are: its ``frames/`` folder, else its video file.

    Raises:
        FileNotFoundError: no such sample, or a sample with neither ``frames/`` nor a video.

    See book/07_online_tracker.py.
    """
    root = sample_path(name)
    if (root / "frames").is_dir():
        return root / "frames"
    videos = sorted(p for p in root.iterdir() if p.suffix.lower() in sio.VIDEO_EXTENSIONS)
    if not videos:
        raise FileNotFoundError(f"sample {root} has neither frames/ nor a video file")
    return videos[0]


def sample_box(name: str) -> tuple[float, float, float, float]:
    """The first-frame ``(x, y, w, h)`` of a shipped sample (first line of its
    ``groundtruth.txt``; an 8-number polygon becomes its min/max box).

    Raises:
        FileNotFoundError: no such sample.

    See book/07_online_tracker.py.
    """
    return tuple(float(v) for v in _read_boxes(sample_path(name) / "groundtruth.txt")[0])


def load_sample(name: str = "synthetic_ellipse") -> Sample:
    """Load a sample shipped in ``data_samples/`` (paths resolved from the package, not cwd).

    A sample folder holds ``groundtruth.txt`` and either ``frames/`` (images) or one video
    file; ``masks/`` (PNG, non-zero = object) is optional.

    Args:
        name: folder name; :func:`available_samples` lists them.

    Returns:
        Sample: frames (RGB uint8), first-frame box, boxes and masks.

    Raises:
        FileNotFoundError: listing the available names if there is no such sample, or if
            the sample has neither ``frames/`` nor a video.

    See book/07_online_tracker.py.
    """
    root = sample_path(name)
    src = sio.FrameSource(sample_frames(name))
    frames = list(src)
    masks = None
    if (root / "masks").is_dir():
        masks = [sio.read_image(p)[..., 0] > 0 for p in sio.list_images(root / "masks")]
    boxes = _read_boxes(root / "groundtruth.txt")
    return Sample(name, root, frames, tuple(float(v) for v in boxes[0]), boxes, masks, src.fps)
