"""Reading frames and writing results: image folders, videos, cameras; masks, text, video.

Every array that crosses this module is **RGB** ``uint8`` (OpenCV's BGR stays inside).
Every writer is **atomic**: it writes a temporary file in the target's folder and then
``os.replace``-s it onto the target, so an interrupted run leaves either the old file or
the complete new one, never half a file (:func:`atomic_path` is the one place that does it).

See book/07_online_tracker.py.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import sys
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


# -- atomic writing ------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix (OpenCV picks the encoder from it) and starts with
    a dot. If the block raises (``KeyboardInterrupt`` included) the temporary file is
    deleted and ``path`` is left untouched (absent, or with its old content).

    Args:
        path: the final file; its folder must exist.

    Yields:
        Path: where the block must write.

    Raises:
        FileNotFoundError: if the block did not create the temporary file.

    See book/07_online_tracker.py.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {path}")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open(path, mode)`` that only replaces ``path`` when the block succeeds.

    Args:
        path: the final file.
        mode: ``"w"`` (text, UTF-8 unless ``encoding`` is given) or ``"wb"``.
        **kwargs: passed to :func:`open`.

    See book/07_online_tracker.py.
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not 'w' or 'wb'")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode.replace("w", "x"), **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def _write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


# -- the decoders' own messages -------------------------------------------------------------


class ImageDecodeWarning(UserWarning):
    """An image decoded, but its decoder reported damage (e.g. libjpeg's "Corrupt JPEG
    data: ..."): the picture may be partly wrong."""


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Collect what native libraries (libjpeg, FFmpeg, OpenCV) print on the process's
    stderr (file descriptor 2) during the block, instead of letting it reach the terminal.

    Yields a list that holds, after the block, the non-empty lines printed. Python's own
    ``sys.stderr`` is flushed first and is redirected too, so nothing is reordered. If
    descriptor 2 cannot be redirected (no such descriptor), the block runs unchanged and
    the list stays empty.

    See book/07_online_tracker.py.
    """
    lines: list[str] = []
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, AttributeError, ValueError):
            yield lines
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield lines
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace")
                lines.extend(ln.strip() for ln in text.splitlines() if ln.strip())


# -- reading -------------------------------------------------------------------------------


def _natural_key(name: str) -> list:
    """'frame10.jpg' sorts after 'frame2.jpg': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (jpg, jpeg, png, bmp; any case) of a folder in natural numeric order.

    See book/07_online_tracker.py.
    """
    files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _jpeg_is_complete(data: bytes) -> bool:
    """True if the JPEG has an end-of-image marker after its first scan.

    Walks the length-prefixed segments up to the first start-of-scan (so a thumbnail in an
    APP segment is skipped), then looks for ``FFD9``; entropy-coded data cannot contain it.
    OpenCV 4 decodes a truncated JPEG into a half-grey image without an error.
    """
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", i) != -1
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return False


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as RGB.

    Args:
        path: a jpg/png/bmp (any format OpenCV decodes).

    Returns:
        np.ndarray[H, W, 3] uint8, RGB.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it cannot be decoded (not an image, truncated, corrupt); the path is
            in the message.

    Warns:
        ImageDecodeWarning: the image decoded, but the decoder reported damage (its
            messages, captured from the process's stderr, are in the warning, which names
            the file): the picture may be partly wrong.

    See book/07_online_tracker.py.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image {p} does not exist")
    data = p.read_bytes()
    with native_stderr() as messages:  # libjpeg prints "Corrupt JPEG data: ..." there
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise ValueError(f"cannot read image {p}: not a decodable image (corrupt or truncated?)")
    if data[:2] == b"\xff\xd8" and not _jpeg_is_complete(data):
        raise ValueError(f"cannot read image {p}: truncated JPEG (no end-of-image marker)")
    if messages:
        warnings.warn(f"image {p} decoded with warnings: {'; '.join(messages)}",
                      ImageDecodeWarning, stacklevel=2)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _camera_index(source) -> int | None:
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return int(source)
    if isinstance(source, str) and source.isdigit() and not Path(source).exists():
        return int(source)
    return None


@dataclass(frozen=True)
class FrameRead:
    """One frame as :meth:`FrameSource.read_each` reads it.

    Attributes:
        index: position in the source, from 0.
        name: the file stem (folder) or ``"00000"``-style number (video, camera).
        image: np.ndarray[H, W, 3] uint8 RGB, or ``None`` if the frame is unreadable.
        error: why the frame is unreadable (one line naming the file), else ``None``.
        warnings: what the decoder reported for a frame that did decode (e.g. libjpeg's
            "Corrupt JPEG data: ..."); empty for a clean frame.
    """

    index: int
    name: str
    image: np.ndarray | None
    error: str | None = None
    warnings: tuple[str, ...] = ()


class FrameSource:
    """Frames of an image folder, a video file or a camera, read lazily, in RGB.

    Iterating yields ``np.ndarray[H, W, 3] uint8`` RGB frames one at a time (memory does
    not grow with the length); each ``iter()`` starts again from the first frame
    (a camera just continues streaming), and an unreadable frame raises ``ValueError``.
    :meth:`read_each` instead yields a :class:`FrameRead` per frame and goes on past an
    unreadable one. What the decoders print (libjpeg, FFmpeg, OpenCV) is captured, never
    shown: a warning of a frame that decoded is in its :class:`FrameRead`.

    Attributes:
        kind: ``"folder"``, ``"video"`` or ``"camera"``.
        path: the folder or video file (``None`` for a camera).
        size: ``(H, W)`` of the frames, pixels.
        fps: frames per second from the container/driver, ``None`` for a folder or when
            unknown.
        names: one name per frame: file stems for a folder (``"00000"``), ``"00000"``,
            ``"00001"``, ... for a video; ``None`` for a camera.

    ``len()`` is the number of files, or the frame count the video container reports
    (it can be approximate for some codecs); a camera has no ``len()`` (``TypeError``).

    Args:
        source: a folder of jpg/jpeg/png/bmp files (natural order: ``2.jpg`` before
            ``10.jpg``), a video file, or a camera index (``int`` or a digit string that
            is not an existing path).

    Raises:
        FileNotFoundError: if the path does not exist or a folder holds no image.
        ValueError: if the video or camera cannot be opened, or the first image cannot be
            read.

    See book/07_online_tracker.py.
    """

    def __init__(self, source: str | os.PathLike | int):
        self._files: list[Path] | None = None
        self._count: int | None = None
        self.fps: float | None = None
        cam = _camera_index(source)
        if cam is not None:
            self.kind, self.path, self._camera = "camera", None, cam
            with native_stderr():  # OpenCV's "[ WARN:0@...] can't open camera" lines
                cap = cv2.VideoCapture(cam)
                ok, frame = cap.read() if cap.isOpened() else (False, None)
                fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
                cap.release()
            if not ok:
                raise ValueError(f"camera {cam} cannot be opened (no such device?)")
            self.size, self.fps = frame.shape[:2], fps
            return
        p = Path(source).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"frame source {p} does not exist")
        self.path = p
        if p.is_dir():
            self.kind = "folder"
            self._files = list_images(p)
            if not self._files:
                raise FileNotFoundError(
                    f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) in folder {p}")
            self._count = len(self._files)
            self.size = read_image(self._files[0]).shape[:2]
            return
        self.kind = "video"
        with native_stderr():  # FFmpeg's "moov atom not found" and the like
            cap = cv2.VideoCapture(str(p))
            opened = cap.isOpened()
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
            count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
            cap.release()
        if not opened:
            raise ValueError(f"cannot open video {p} (not a video, or codec unsupported)")
        self.size, self.fps, self._count = (h, w), fps, count

    @property
    def names(self) -> list[str] | None:
        if self._files is not None:
            return [f.stem for f in self._files]
        if self._count is not None:
            return [f"{i:05d}" for i in range(self._count)]
        return None

    def __len__(self) -> int:
        if self._count is None:
            raise TypeError("a camera stream has no length")
        return self._count

    def __repr__(self) -> str:
        n = "?" if self._count is None else self._count
        where = self.path if self.path is not None else f"camera {self._camera}"
        return f"FrameSource({self.kind} {where}, {n} frames, size={self.size}, fps={self.fps})"

    def __iter__(self) -> Iterator[np.ndarray]:
        for r in self.read_each():
            if r.image is None:
                raise ValueError(r.error)
            yield r.image

    def read_each(self) -> Iterator[FrameRead]:
        """Yield one :class:`FrameRead` per frame, lazily, from the first: an unreadable
        frame (not decodable, truncated, of another size than the first) is a record with
        ``image=None`` and its ``error``, and reading goes on with the next.

        See book/07_online_tracker.py.
        """
        if self._files is not None:
            return self._read_files()
        return self._read_capture()

    def _read_files(self) -> Iterator[FrameRead]:
        for i, f in enumerate(self._files):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ImageDecodeWarning)
                    img = read_image(f)
            except (OSError, ValueError) as exc:
                yield FrameRead(i, f.stem, None, " ".join(str(exc).split()))
                continue
            if img.shape[:2] != tuple(self.size):
                yield FrameRead(i, f.stem, None,
                                f"image {f} is {img.shape[1]}x{img.shape[0]}, but the first "
                                f"frame is {self.size[1]}x{self.size[0]}")
                continue
            found = [str(w.message).split(" decoded with warnings: ", 1)[-1] for w in caught
                     if issubclass(w.category, ImageDecodeWarning)]
            for w in caught:  # anything else goes on as it came
                if not issubclass(w.category, ImageDecodeWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            yield FrameRead(i, f.stem, img, None, tuple(found))

    def _read_capture(self) -> Iterator[FrameRead]:
        with native_stderr():
            cap = cv2.VideoCapture(self._camera if self.kind == "camera" else str(self.path))
        try:
            for i in itertools.count():
                with native_stderr() as messages:  # e.g. "[h264 @ ...] error while decoding"
                    ok, frame = cap.read()
                if not ok:
                    return
                yield FrameRead(i, f"{i:05d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), None,
                                tuple(messages))
        finally:
            cap.release()


def read_frames(source: str | os.PathLike | int) -> Iterator[np.ndarray]:
    """Lazily yield the RGB frames of a folder, video or camera (see :class:`FrameSource`).

    The source is opened (and checked) when this function is called, not at the first
    ``next()``.

    Returns:
        Iterator[np.ndarray[H, W, 3] uint8]: RGB frames.

    Raises:
        FileNotFoundError, ValueError: as :class:`FrameSource`; a frame that cannot be
            decoded raises ``ValueError`` naming the file when it is reached.

    See book/07_online_tracker.py.
    """
    return iter(FrameSource(source))


# -- writing -------------------------------------------------------------------------------


def davis_palette(n: int = 256) -> np.ndarray:
    """The DAVIS / PASCAL VOC colour palette: label ``i`` -> an RGB colour.

    Bit ``k`` of the label sets bit ``7 - k // 3`` of the red, green or blue channel:
    0 black, 1 (128, 0, 0), 2 (0, 128, 0), 3 (128, 128, 0), ..., 255 (224, 224, 192).

    Returns:
        np.ndarray[n, 3] uint8, RGB.

    See book/07_online_tracker.py.
    """
    labels = np.arange(n)
    pal = np.zeros((n, 3), np.uint8)
    for k in range(8):
        for c in range(3):
            pal[:, c] |= (((labels >> (3 * k + c)) & 1) << (7 - k)).astype(np.uint8)
    return pal


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB (or single-channel) image; the format follows the suffix.

    Args:
        path: ``.jpg``/``.jpeg``/``.png``/``.bmp`` file.
        image: np.ndarray[H, W, 3] uint8 RGB, or np.ndarray[H, W] uint8.
        jpeg_quality: 0-100, for JPEG only.

    Raises:
        ValueError: for another dtype/shape or an unsupported suffix.

    See book/07_online_tracker.py.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"expected (H, W, 3) or (H, W) uint8, got {img.shape} {img.dtype}")
    ext = Path(path).suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"unsupported image suffix {ext!r} (use one of {IMAGE_EXTENSIONS})")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode {path}")
    _write_bytes(path, buf.tobytes())


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a binary mask as a single-channel PNG: 255 where ``mask`` is true, else 0.

    Args:
        path: ``.png`` file.
        mask: np.ndarray[H, W] bool (any dtype: non-zero is foreground).

    See book/07_online_tracker.py.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    write_image(path, np.where(m != 0, 255, 0).astype(np.uint8))


def write_palette_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a label map as a DAVIS-style indexed PNG (PIL mode ``'P'``, :func:`davis_palette`).

    The one writer of DAVIS label PNGs: the tracker's output, the DAVIS benchmark's result
    folders and the evaluation's fixtures (``metrics.davis.write_mask_png`` is this function).
    Reading it back with PIL (``np.array(Image.open(path))``) or
    :func:`siammask_edu.metrics.davis.read_mask_png` gives the labels. Missing parent
    folders are created; the file appears atomically. Not to be confused with
    :func:`write_mask_png`, which writes one binary mask as a 0/255 grey PNG.

    Args:
        path: ``.png`` file.
        labels: np.ndarray[H, W] integer or bool, values 0..255 (0 = background,
            ``k`` = object ``k``, 255 = void in DAVIS-2017).

    Raises:
        ValueError: if ``labels`` is not a 2-D integer/bool array or has values outside 0..255.

    See book/07_online_tracker.py.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool):
        raise ValueError(f"labels must be an (H, W) integer array, got {lab.shape} {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > 255):
        raise ValueError("labels must lie in 0..255 for a palette PNG")
    img = Image.fromarray(lab.astype(np.uint8))  # mode 'L'
    img.putpalette(davis_palette().tobytes())  # 'L' + palette -> mode 'P'
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write_bytes(path, buf.getvalue())


def merge_objects(prob_maps: np.ndarray | Sequence[np.ndarray], thr: float) -> np.ndarray:
    """Fuse per-object probability maps into one label map (released DAVIS-2017 rule).

    ``label = argmax_i(p_i) + 1`` where ``max_i p_i > thr`` (strict), else ``0``; ties go to
    the lower object index. This is the released ``track_vos`` fusion, with ``thr`` the
    tracker's ``seg_thr``; pixels outside an object's pasted region hold -1 in the released
    maps, so they never win. A pixel whose maximum is NaN is background (``NaN > thr`` is
    false). The one implementation of the rule: ``metrics.davis.merge_objects`` and
    ``multi.merge_masks`` call it.

    Args:
        prob_maps: np.ndarray[N, H, W] float (or a sequence of N (H, W) maps), object
            ``i`` gets label ``i + 1``.
        thr: probability threshold.

    Returns:
        np.ndarray[H, W] uint8 labels in 0..N.

    Raises:
        ValueError: if the maps are not (N, H, W) with 1 <= N <= 255.

    See book/07_online_tracker.py.
    """
    p = np.asarray(prob_maps)
    if p.ndim != 3 or not 1 <= p.shape[0] <= 255:
        raise ValueError(f"expected (N, H, W) maps with 1 <= N <= 255, got shape {p.shape}")
    best = p.max(axis=0)
    return np.where(best > thr, p.argmax(axis=0) + 1, 0).astype(np.uint8)


def format_vot_region(region, index: int | None = None) -> str:
    """One line of the VOT text format (no newline), as the official toolkit writes it.

    A status code (an ``int``, or one number) is written as ``"%d"``: ``1`` initialisation,
    ``2`` failure, ``0`` skipped frame. A region (4 numbers ``x,y,w,h``, or ``2k >= 6``
    numbers ``x1,y1,...,xk,yk``, frame pixels) is written as C ``"%.4f"`` numbers joined by
    commas, each number first rounded to float32: the toolkit's ``vot_float2str`` (used by
    foolwood SiamMask's ``track_vot``) takes a C ``float``. So ``813.27024`` is written
    ``813.2703`` and ``1.00005`` ``1.0000`` (``"%.4f"`` of the float64 would give
    ``813.2702`` and ``1.0001``); float32 inputs, such as the tracker's polygons, are
    unaffected.

    Args:
        region: an ``int`` code, np.ndarray[k, 2] (a polygon's corners) or a sequence of 1, 4
            or 2k >= 6 numbers.
        index: the region's position, only used in the error message.

    Raises:
        ValueError: for 0, 2, 3 or an odd number (> 4) of numbers (the lengths
            :func:`siammask_edu.metrics.vot.parse_region` rejects).

    See book/07_online_tracker.py.
    """
    if isinstance(region, (int, np.integer)) and not isinstance(region, bool):
        return f"{int(region):d}"
    v = np.asarray(region, dtype=np.float64).ravel()
    if v.size == 1:
        return f"{int(v[0]):d}"
    if v.size != 4 and (v.size < 6 or v.size % 2):
        where = "region" if index is None else f"region {index}"
        raise ValueError(f"{where} has {v.size} numbers; expected 1 (code), 4 (box) or "
                         "2k >= 6 (polygon)")
    return ",".join(f"{float(x):.4f}" for x in v.astype(np.float32))  # = C "%.4f" of a float


def write_vot_polygons(path: str | os.PathLike, polygons: Iterable) -> None:
    """Write one region per line in the VOT text format (:func:`format_vot_region`).

    The one VOT result writer: the ``track`` command's ``polygons.txt``, the VOT benchmark's
    ``<seq>_001.txt`` files and ``metrics.vot.write_trajectory`` (this function) all use it.
    Each item is a polygon (np.ndarray[4, 2] or 8 numbers: x1,y1,...,x4,y4, frame pixels),
    an axis-aligned box (4 numbers x,y,w,h), or a status code (an ``int`` or a 1-number
    array, as :func:`siammask_edu.metrics.vot.read_trajectory` returns) as in the released VOT
    driver: ``1`` initialisation, ``2`` failure, ``0`` skipped frame. Numbers are written as
    the official toolkit does, float32 then ``"%.4f"``. The file appears atomically: on an
    error an existing file keeps its old content.

    Raises:
        ValueError: for an item that is not a code, 4 numbers or 2k >= 6 numbers.

    See book/07_online_tracker.py.
    """
    lines = [format_vot_region(item, i) + "\n" for i, item in enumerate(polygons)]
    with atomic_open(path, "w") as fh:
        fh.writelines(lines)


def write_boxes_xywh(path: str | os.PathLike, boxes: Iterable) -> None:
    """Write one ``x,y,w,h`` box per line (``"%.4f"``, top-left corner, pixels).

    Raises:
        ValueError: for a box that is not 4 numbers.

    See book/07_online_tracker.py.
    """
    lines = []
    for i, box in enumerate(boxes):
        v = np.asarray(box, dtype=np.float64).ravel()
        if v.size != 4:
            raise ValueError(f"box {i} has {v.size} numbers; expected x,y,w,h")
        lines.append(",".join(f"{x:.4f}" for x in v) + "\n")
    with atomic_open(path, "w") as fh:
        fh.writelines(lines)


class VideoWriter:
    """Write RGB frames to a video; the file appears (atomically) only on a clean close.

    Tries each ``(fourcc, suffix)`` of ``codecs`` in turn: ``mp4v`` into ``.mp4``, then
    ``MJPG`` into ``.avi`` (the final name's suffix changes; see :attr:`path`). If the
    ``with`` block raises, nothing is left behind.

    Args:
        path: the wanted file, e.g. ``out/overlay.mp4``.
        fps: frames per second (> 0).
        size: ``(H, W)``; if ``None``, taken from the first frame.
        codecs: ``(fourcc, suffix)`` pairs to try in order.

    Example:
        >>> with VideoWriter("overlay.mp4", fps=25) as vw:  # doctest: +SKIP
        ...     for frame in frames:
        ...         vw.write(frame)  # (H, W, 3) uint8 RGB

    Raises:
        ValueError: from :meth:`write` for a frame of another size or dtype; if no codec
            can be opened.

    See book/07_online_tracker.py.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0,
                 size: tuple[int, int] | None = None,
                 codecs: Sequence[tuple[str, str]] = (("mp4v", ".mp4"), ("MJPG", ".avi"))):
        if not fps or fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path, self.fps, self.size = Path(path), float(fps), size
        self.codecs, self.fourcc, self.n_frames = tuple(codecs), None, 0
        self._writer, self._stack = None, contextlib.ExitStack()

    def _open(self, size: tuple[int, int]) -> None:
        h, w = size
        for fourcc, suffix in self.codecs:
            target = self.path.with_suffix(suffix)
            stack = contextlib.ExitStack()
            tmp = stack.enter_context(atomic_path(target))
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if writer.isOpened():
                self._writer, self._stack, self.path, self.fourcc = writer, stack, target, fourcc
                self.size = (h, w)
                return
            writer.release()
            stack.__exit__(*_abandon())  # delete the temporary file; target untouched
        raise ValueError(f"no video codec could be opened for {self.path} (tried {self.codecs})")

    def write(self, frame: np.ndarray) -> None:
        """Append one np.ndarray[H, W, 3] uint8 RGB frame."""
        f = np.asarray(frame)
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {f.shape} {f.dtype}")
        if self._writer is None:
            self._open(tuple(self.size) if self.size is not None else f.shape[:2])
        if f.shape[:2] != tuple(self.size):
            raise ValueError(f"frame is {f.shape[1]}x{f.shape[0]}, video is "
                             f"{self.size[1]}x{self.size[0]}")
        self._writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        self.n_frames += 1

    def close(self, discard: bool = False) -> None:
        """Finish the file and move it into place (or delete it if ``discard``)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if discard:
            self._stack.__exit__(*_abandon())
        else:
            self._stack.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(discard=exc_type is not None)


class _Abandon(Exception):
    """Thrown into :func:`atomic_path` to make it delete its temporary file."""


def _abandon() -> tuple:
    exc = _Abandon()
    return type(exc), exc, None
