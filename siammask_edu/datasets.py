"""Training pairs: sources (DAVIS, COCO, a custom layout), the released sampling and augmentation.

A *track* is one object in a sequence: its frames, boxes and (optionally) masks. A pair is
(template frame, search frame) of one track, a few frames apart (positive), or of two
random targets (negative). Released rules (``released-implementation.md`` §5.2–§5.4):

* template frame uniform over the track's annotated frames, search frame uniform over
  ``[t - frame_range, t + frame_range]`` (indices into the annotated frames; may equal t;
  single-image sources such as COCO give template = search image);
* negatives with probability ``neg`` (search: a random target of a random source), gray
  pairs with probability ``gray``;
* crops: the released "crop511" (side ``s_z * 511/127``, ``s_z = sqrt((w+p)(h+p))``,
  ``p = (w+h)/2``, border = frame mean colour) followed by the augmentation crop (centre 255,
  side ``size - 1``, per-axis scale ``1 + U*scale`` capped at 511/side, shift ``U*shift``
  clipped to the 511 image) are composed into **one** ``cv2.warpAffine`` from the frame;
* colour: subtract ``M @ N(0, I3)`` (reversed to BGR), blur with probability ``blur``
  (released kernel), no flip; masks warped with the same map, label ``+1`` where > 0.5.

Every random number of sample ``i`` comes from ``numpy.random.default_rng((seed, i))``, so
a sample depends only on (seed, index): identical with any number of DataLoader workers,
across resumes, and across DDP ranks.

Outputs are BGR 0..255 float32 crops (the tracker's convention; the lite backbone
normalises inside). See book/09_training_lite.py.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .augment import (
    PasteObject,
    Variety,
    motion_blur,
    occlude,
    paste_distractor,
    paste_on_background,
    strong_scale,
)
from .paths import data_root
from .targets import anchor_targets, box_iou_anchors, crop_anchors, row_weights, siamfc_labels

POS_IOU = 0.6  # anchor_targets' positive threshold (its default pos_thr)

# DAVIS-2016 validation sequences: never used for training (the 3 shared ones included).
DAVIS2016_VAL = (
    "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow", "cows",
    "dance-twirl", "dog", "drift-chicane", "drift-straight", "goat", "horsejump-high",
    "kite-surf", "libby", "motocross-jump", "paragliding-launch", "parkour", "scooter-black",
    "soapbox",
)
# COCO category id of the object annotated in each DAVIS-2016 train sequence, where the
# mask is one object of one COCO class (person + bicycle, horse + rider, ... are left out):
# lets same-class distractors and semantic negative pairs (Variety.same_class) use DAVIS.
DAVIS2016_TRAIN_CATEGORY = {
    "bear": 23, "boat": 9, "breakdance-flare": 1, "bus": 6, "car-turn": 3, "dance-jump": 1,
    "dog-agility": 18, "elephant": 22, "flamingo": 16, "hike": 1, "lucia": 1,
    "mallard-fly": 16, "mallard-water": 16, "rollerblade": 1, "soccerball": 37, "train": 7,
}
RGB_VAR = np.array([[-0.55919361, 0.98062831, -0.41940627],
                    [1.72091413, 0.19879334, -1.82968581],
                    [4.64467907, 4.73710203, 4.88324118]], dtype=np.float32)
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(ValueError):
    """A dataset that cannot be used as given (the message names the file or folder).

    See book/09_training_lite.py.
    """


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path} (missing, empty or not an image)")
    return img


def _mask_array(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if m.ndim == 3:
        m = m.max(axis=2)
    m = (m > 0).astype(np.uint8)
    if m.shape != shape:  # masks at another resolution than the frames
        m = cv2.resize(m * 255, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        m = (m > 127).astype(np.uint8)
    return m


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise DataError(f"cannot read mask {path} (missing, empty or not an image)")
    return _mask_array(m, shape)


def _decode_fully(path: Path, flags: int) -> tuple[np.ndarray | None, str | None]:
    """Decode a whole file, strictly: ``(image, None)`` or ``(None, why)``.

    OpenCV decodes a JPEG truncated to 60 % into a half-grey image without an error (libjpeg
    only prints "Premature end of JPEG file"): a JPEG without its end-of-image marker, and a
    file whose decoder printed damage messages, are refused here, as the tracker's reader
    (:func:`siammask_edu.io.read_image`) refuses them.
    """
    from .io import _jpeg_is_complete, native_stderr

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
    if not data:
        return None, "empty file"
    with native_stderr() as messages:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        return None, "not a decodable image (corrupt or truncated)"
    if data[:2] == b"\xff\xd8" and not _jpeg_is_complete(data):
        return None, "truncated JPEG (no end-of-image marker)"
    if messages:
        return None, f"decoder reported damage ({'; '.join(messages)})"
    return img, None


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """``(x, y, w, h)`` of the non-zero pixels (``w = x_max - x_min + 1``), None if empty.

    See book/09_training_lite.py.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1],
                    np.float32)


@dataclass
class Track:
    """One object through a sequence.

    Attributes:
        name: ``source/sequence[/object]``, for messages.
        frames: image paths, one per annotated frame (sorted).
        boxes (np.ndarray[N, 4] float32): ``(x, y, w, h)`` in frame pixels.
        masks: per frame a mask path (DAVIS/custom), a COCO RLE dict, or None.
        category: COCO category id of the object when known (COCO ``coco_category_id``,
            :data:`DAVIS2016_TRAIN_CATEGORY`), else None; used for same-class distractors.

    See book/09_training_lite.py.
    """

    name: str
    frames: list[Path]
    boxes: np.ndarray
    masks: list = field(default_factory=list)
    category: int | None = None


class Source:
    """A list of tracks plus how to read them; subclasses fill ``tracks``.

    Args:
        frame_range: max template-search distance, in annotated frames (COCO: 0).
        in_memory: keep decoded frames and masks after the start-up validation (fast
            items; the memory of every decoded frame, ~1.8 GB for DAVIS-2016 train at 240p +
            COCO-128, in each process that holds the source). False: decode on demand; the
            source then holds only file lists and boxes (a few MB), items are identical.

    See book/09_training_lite.py.
    """

    name = "source"
    has_masks = True

    def __init__(self, frame_range: int = 25, in_memory: bool = True) -> None:
        self.frame_range = frame_range
        self.in_memory = in_memory
        self.tracks: list[Track] = []
        self._images: dict[Path, np.ndarray] = {}
        self._masks: dict = {}
        self._problems: list[str] = []  # unreadable files met while listing the tracks

    def __len__(self) -> int:
        return len(self.tracks)

    def image(self, path: Path) -> np.ndarray:
        """The BGR uint8 frame (cached when ``in_memory``)."""
        img = self._images.get(path)
        if img is None:
            img = _read_image(path)
            if self.in_memory:
                self._images[path] = img
        return img

    def mask(self, track: Track, i: int, shape: tuple[int, int]) -> np.ndarray | None:
        """Mask of frame ``i`` of ``track`` as ``np.ndarray[H, W] uint8`` in {0, 1}."""
        ref = track.masks[i] if track.masks else None
        if ref is None:
            return None
        key = (track.name, i)
        m = self._masks.get(key)
        if m is None:
            m = self._decode_mask(ref, shape)
            if self.in_memory:
                self._masks[key] = m
        return m

    def _decode_mask(self, ref, shape):
        return _read_mask(Path(ref), shape)

    def problems(self) -> list[str]:
        """Decode every frame and every mask fully, once; one line per unusable file.

        A missing, empty, undecodable or truncated file, or one whose decoder reported damage
        (libjpeg's "Corrupt JPEG data", "Premature end of JPEG file"), is a problem. With
        ``in_memory`` the decoded arrays are kept.
        """
        out = list(self._problems)
        shapes: dict[Path, tuple[int, int] | None] = {}
        for t in self.tracks:
            for i, p in enumerate(t.frames):
                if p not in shapes:
                    img, why = _decode_fully(p, cv2.IMREAD_COLOR)
                    shapes[p] = None if img is None else img.shape[:2]
                    if why is not None:
                        out.append(f"cannot read image {p}: {why}")
                        self._images.pop(p, None)
                    elif self.in_memory:
                        self._images[p] = img
                ref = t.masks[i] if t.masks else None
                if ref is None or shapes[p] is None:
                    continue
                if isinstance(ref, (str, os.PathLike)):
                    m, why = _decode_fully(Path(ref), cv2.IMREAD_UNCHANGED)
                    if why is not None:
                        out.append(f"cannot read mask {ref}: {why}")
                        self._masks.pop((t.name, i), None)
                        continue
                    m = _mask_array(m, shapes[p])
                    if self.in_memory:
                        self._masks[(t.name, i)] = m
                else:
                    try:
                        self.mask(t, i, shapes[p])
                    except Exception as exc:  # noqa: BLE001 (an RLE that does not decode)
                        out.append(f"cannot decode the mask of {t.name} frame {i}: {exc}")
        return list(dict.fromkeys(out))

    def validate(self) -> None:
        """Decode every frame (and every mask) fully, once (:meth:`problems`); raise one
        error listing every bad file.

        Raises:
            DataError: missing, truncated or corrupt frames or masks (one line each, with
                the path and the reason), or a source without any usable track.
        """
        bad = self.problems()
        if not self.tracks and not bad:
            raise DataError(f"{self.name}: no usable track found")
        if bad:
            raise DataError(f"{self.name}: {len(bad)} unusable file(s) (missing, truncated or "
                            "corrupt); fix or remove them:\n  " + "\n  ".join(bad))


class DavisSource(Source):
    """DAVIS layout: ``JPEGImages/<res>/<seq>/*.jpg`` + ``Annotations/<res>/<seq>/*.png``.

    Frames with an empty mask are dropped (the target is absent). Masks may come from
    another resolution folder (``mask_resolution``); they are resized to the frame.

    Args:
        root: the ``davis2016`` folder (default ``data_root()/davis2016``).
        split: ``"train"`` reads ``ImageSets/2016/train.txt`` (else every folder).
        resolution, mask_resolution: ``"240p"``, ``"480p"``, ...
        sequences: explicit sequence names (overrides ``split``).
        allow_val: allow DAVIS-2016 val sequences (never for training).

    Raises:
        DataError: a val sequence requested without ``allow_val``, or missing folders.

    See book/09_training_lite.py.
    """

    name = "davis"

    def __init__(self, root=None, split: str = "train", resolution: str = "240p",
                 mask_resolution: str | None = None, sequences=None, frame_range: int = 25,
                 allow_val: bool = False, in_memory: bool = True) -> None:
        super().__init__(frame_range, in_memory)
        root = Path(root) if root is not None else data_root() / "davis2016"
        img_dir = root / "JPEGImages" / resolution
        ann_dir = root / "Annotations" / (mask_resolution or resolution)
        for d in (img_dir, ann_dir):
            if not d.is_dir():
                raise DataError(f"DAVIS folder {d} does not exist")
        if sequences is None:
            lst = root / "ImageSets" / "2016" / f"{split}.txt"
            if lst.is_file():
                sequences = [ln.split()[0].strip("/").split("/")[-2] if "/" in ln else ln.strip()
                             for ln in lst.read_text().splitlines() if ln.strip()]
                sequences = list(dict.fromkeys(sequences))
            else:
                sequences = sorted(p.name for p in img_dir.iterdir() if p.is_dir())
        bad = sorted(set(sequences) & set(DAVIS2016_VAL))
        if bad and not allow_val:
            raise DataError(f"DAVIS-2016 validation sequences {bad} must not be used for training "
                            "(pass allow_val=True for evaluation-only use)")
        for seq in sequences:
            fdir, adir = img_dir / seq, ann_dir / seq
            if not fdir.is_dir():
                raise DataError(f"DAVIS sequence folder {fdir} does not exist")
            frames, boxes, masks = [], [], []
            for f in sorted(p for p in fdir.iterdir() if p.suffix.lower() in IMAGE_EXT):
                mpath = adir / (f.stem + ".png")
                if not mpath.is_file():
                    raise DataError(f"DAVIS annotation {mpath} is missing for frame {f}")
                try:
                    img = self.image(f)
                    m = self._decode_mask(mpath, img.shape[:2])
                except DataError as exc:  # listed with the others by validate()
                    self._problems.append(str(exc))
                    continue
                box = mask_box(m)
                if box is None:
                    continue
                if in_memory:
                    self._masks[(f"davis/{seq}", len(frames))] = m
                frames.append(f)
                boxes.append(box)
                masks.append(mpath)
            if frames:
                self.tracks.append(Track(f"davis/{seq}", frames, np.stack(boxes), masks,
                                         DAVIS2016_TRAIN_CATEGORY.get(seq)))


class CocoSource(Source):
    """COCO json (polygons or RLE, read with pycocotools): every instance is a one-frame track.

    Args:
        root: folder with ``annotations/instances.json`` and ``images/`` (default
            ``data_root()/coco128``); ``file_name`` is relative to ``images/``.
        annotation: json path relative to ``root``.
        min_side, min_area: keep instances with a box >= 16 px a side and >= 1000 px^2;
            crowd instances are dropped.

    See book/09_training_lite.py.
    """

    name = "coco"

    def __init__(self, root=None, annotation: str = "annotations/instances.json",
                 image_dir: str = "images", min_side: float = 16, min_area: float = 1000,
                 in_memory: bool = True) -> None:
        super().__init__(0, in_memory)
        from pycocotools.coco import COCO
        import contextlib
        import io

        root = Path(root) if root is not None else data_root() / "coco128"
        ann = root / annotation
        if not ann.is_file():
            raise DataError(f"COCO annotation file {ann} does not exist")
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO(str(ann))
        for a in sorted(self.coco.dataset.get("annotations", []), key=lambda a: a["id"]):
            x, y, w, h = a["bbox"]
            if a.get("iscrowd", 0) or min(w, h) < min_side or w * h < min_area:
                continue
            info = self.coco.imgs[a["image_id"]]
            rle = self.coco.annToRLE(a)
            # the shared COCO-128 is class-agnostic (category_id 1) and keeps the class in
            # coco_category_id; a standard COCO file has the class in category_id
            cat = a.get("coco_category_id", a.get("category_id"))
            self.tracks.append(Track(f"coco/{a['id']}", [root / image_dir / info["file_name"]],
                                     np.array([[x, y, w, h]], np.float32), [rle],
                                     None if cat is None else int(cat)))

    def _decode_mask(self, ref, shape):
        from pycocotools import mask as mask_utils

        m = mask_utils.decode(ref).astype(np.uint8)
        if m.shape != shape:
            m = (cv2.resize(m * 255, (shape[1], shape[0])) > 127).astype(np.uint8)
        return m


def _read_groundtruth(path: Path) -> list[np.ndarray | None]:
    out = []
    for ln in path.read_text().splitlines():
        vals = [float(v) for v in ln.replace(",", " ").split()] if ln.strip() else []
        if len(vals) == 8:
            xs, ys = vals[0::2], vals[1::2]
            vals = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or min(vals[2:]) <= 0:
            out.append(None)
        else:
            out.append(np.array(vals, np.float32))
    return out


class CustomSource(Source):
    """A documented custom layout, one folder per sequence::

        <root>/<sequence>/
            frames/ | color/ | (images directly)   *.jpg / *.png, sorted by name
            groundtruth.txt   one line per frame: "x,y,w,h" (or 8 numbers, a VOT polygon,
                              whose axis-aligned box is used); an empty, NaN or 0-size line
                              means "target absent" and the frame is skipped
            masks/            optional: <frame stem>.png, non-zero = object (any resolution)

    Args:
        root: the folder holding the sequence folders.
        frame_range: template-search distance in annotated frames.

    Raises:
        DataError: a sequence without frames or ``groundtruth.txt``, or line/frame counts
            that differ (the message names the file).

    See book/09_training_lite.py.
    """

    name = "custom"

    def __init__(self, root, frame_range: int = 25, in_memory: bool = True) -> None:
        super().__init__(frame_range, in_memory)
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"custom dataset folder {root} does not exist")
        for seq in sorted(p for p in root.iterdir() if p.is_dir()):
            fdir = next((seq / d for d in ("frames", "color") if (seq / d).is_dir()), seq)
            frames = sorted(p for p in fdir.iterdir() if p.suffix.lower() in IMAGE_EXT)
            gt = seq / "groundtruth.txt"
            if not gt.is_file():
                raise DataError(f"{gt} is missing")
            boxes = _read_groundtruth(gt)
            if not frames:
                raise DataError(f"no frames (*.jpg/*.png) in {fdir}")
            if len(boxes) != len(frames):
                raise DataError(f"{gt} has {len(boxes)} lines for {len(frames)} frames in {fdir}")
            mdir = seq / "masks"
            keep = [i for i, b in enumerate(boxes) if b is not None]
            masks = [(mdir / (frames[i].stem + ".png")) if mdir.is_dir() else None for i in keep]
            if keep:
                self.tracks.append(Track(f"custom/{seq.name}", [frames[i] for i in keep],
                                         np.stack([boxes[i] for i in keep]), masks))
        self.has_masks = any(m is not None for t in self.tracks for m in t.masks)


# ---------------------------------------------------------------------------------------
# Crops and augmentation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augment:
    """Released ``Augmentation`` parameters of one crop (shift in crop-511 pixels).

    See book/09_training_lite.py.
    """

    shift: float = 0.0
    scale: float = 0.0
    blur: float = 0.0


def crop_matrix(box_xywh, out_size: int, rng: np.random.Generator, aug: Augment,
                context: float = 0.5) -> np.ndarray:
    """Frame -> crop affine map of the released crop511 + augmentation, composed.

    Args:
        box_xywh: target in frame pixels.
        out_size: 127, 255 or 143.
        rng: draws the scale and shift (``U`` uniform in [-1, 1]).
        aug: shift (crop-511 px) and scale amplitudes.

    Returns:
        np.ndarray[2, 3] float64 for ``cv2.warpAffine``.

    See book/09_training_lite.py.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    cx, cy = x + w / 2, y + h / 2
    p = context * (w + h)
    s_z = math.sqrt((w + p) * (h + p))
    s_511 = s_z * 511 / 127
    a = 510.0 / s_511  # frame -> crop511
    side = out_size - 1
    sx = 1 + rng.uniform(-1, 1) * aug.scale if aug.scale else 1.0
    sy = 1 + rng.uniform(-1, 1) * aug.scale if aug.scale else 1.0
    sx, sy = min(sx, 511 / side), min(sy, 511 / side)
    cw, chh = side * sx, side * sy
    x1, y1 = 255 - cw / 2, 255 - chh / 2
    if aug.shift:
        tx, ty = rng.uniform(-1, 1) * aug.shift, rng.uniform(-1, 1) * aug.shift
        x1 += max(-x1, min(510 - (x1 + cw), tx))
        y1 += max(-y1, min(510 - (y1 + chh), ty))
    kx, ky = side / cw, side / chh
    return np.array([[a * kx, 0, (-a * (cx - s_511 / 2) - x1) * kx],
                     [0, a * ky, (-a * (cy - s_511 / 2) - y1) * ky]], np.float64)


def _blur_kernel(rng: np.random.Generator) -> np.ndarray | None:
    size = int(np.round(rng.standard_normal())) * 2 + 1
    if size < 0 or rng.random() < 0.5:
        return None
    size = min(size, 45)
    kernel = np.zeros((size, size))
    c = size // 2
    wx = rng.random()
    kernel[:, c] += 1.0 / size * wx
    kernel[c, :] += 1.0 / size * (1 - wx)
    return kernel


def make_crop(image: np.ndarray, box_xywh, out_size: int, rng: np.random.Generator,
              aug: Augment, gray: bool = False, mask: np.ndarray | None = None,
              avg: np.ndarray | None = None, variety: Variety | None = None, compose=None,
              accept=None):
    """One augmented crop, cut from the frame with a single ``warpAffine``.

    Args:
        variety: v2 augmentations (:class:`siammask_edu.augment.Variety`) applied to this
            crop: the strong scale / aspect change (composed into the same map) and motion
            blur. None (or all off): exactly the released crop, same random draws.
        compose: ``compose(crop, wmask, box, rng) -> (crop, wmask, box)``, called (only
            with a mask) on the warped crop (``[S, S, 3]`` BGR 0..255), the warped mask
            (``[S, S]`` float32 in 0..1) and the box before colour, gray and blur: the
            dataset's copy-paste, distractor and occlusion step.
        accept: ``accept(box) -> bool`` for a strong scale draw (``box`` the transformed
            ``(x1, y1, x2, y2)``): up to ``variety.scale_tries`` draws, the first accepted
            one is used, none accepted = no strong scale (PairDataset: some anchor must keep
            IoU >= 0.6, else the visible target would only get negative or ignored anchors).

    Returns:
        ``(crop, box, mask)``: ``np.ndarray[3, S, S]`` float32 BGR (0..255 minus the colour
        offset, not clipped); the target ``(x1, y1, x2, y2)`` in crop pixels; and the mask
        label ``np.ndarray[1, S, S]`` float32 in {+1, -1} (None without a mask).

    See book/09_training_lite.py.
    """
    x, y, w, h = (float(v) for v in box_xywh)

    def crop_box(A):
        corners = np.array([[x, y, 1], [x + w, y + h, 1]]) @ A.T
        return np.array([corners[0, 0], corners[0, 1], corners[1, 0], corners[1, 1]],
                        np.float32)

    M = crop_matrix(box_xywh, out_size, rng, aug)
    if variety is not None and variety.scale and rng.random() < variety.scale:
        for _ in range(variety.scale_tries):
            M2 = strong_scale(M, box_xywh, rng, variety)
            if accept is None or accept(crop_box(M2)):
                M = M2
                break
    if avg is None:
        avg = image.reshape(-1, 3).mean(axis=0)
    crop = cv2.warpAffine(image, M, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in avg))
    box = crop_box(M)
    wm = None
    if mask is not None:  # the warp draws no random number: order free w.r.t. the v1 draws
        wm = cv2.warpAffine(mask.astype(np.float32), M, (out_size, out_size),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if compose is not None:
            crop, wm, box = compose(crop, wm, box, rng)
    if gray:
        crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    offset = (RGB_VAR @ rng.standard_normal(3).astype(np.float32))[::-1]
    out = crop.astype(np.float32) - offset.astype(np.float32)
    if aug.blur and aug.blur > rng.random():
        kernel = _blur_kernel(rng)
        if kernel is not None:
            out = cv2.filter2D(out, -1, kernel)
    if variety is not None and variety.motion_blur and rng.random() < variety.motion_blur:
        out = motion_blur(out, rng, variety)
    label = None
    if wm is not None:
        label = np.where(wm > 0.5, 1.0, -1.0).astype(np.float32)[None]
    return np.ascontiguousarray(out.transpose(2, 0, 1)), box, label


@dataclass(frozen=True)
class PairConfig:
    """Sampling and augmentation settings (released base / refine columns of §5.2).

    Attributes:
        search_size: 255 (base stage, 25x25 RoWs) or 143 (refine stage, 3x3 RoWs).
        neg, gray: probabilities of a negative pair and of a gray pair.
        template_aug, search_aug: :class:`Augment` of each crop.
        source_probs: probability of each source (normalised); None = by track count.
        siamfc_radius: positive radius of the 2B labels, crop pixels.
        variety: recipe-v2 augmentations (:class:`siammask_edu.augment.Variety`), all off
            by default: then items are bit for bit those of the v1 recipe.

    See book/09_training_lite.py.
    """

    template_size: int = 127
    search_size: int = 255
    neg: float = 0.2
    gray: float = 0.25
    template_aug: Augment = Augment(shift=4, scale=0.05)
    search_aug: Augment = Augment(shift=64, scale=0.18, blur=0.18)
    source_probs: tuple[float, ...] | None = None
    siamfc_radius: float = 16.0
    variety: Variety = field(default_factory=Variety)

    @property
    def score_size(self) -> int:
        """25 for a 255 search (released base_size 8), 3 for 143 (base_size 0)."""
        base = 8 if self.search_size == 255 else 0
        return (self.search_size - self.template_size) // 8 + 1 + base

    @classmethod
    def base(cls, **kw) -> "PairConfig":
        return cls(**kw)

    @classmethod
    def refine(cls, **kw) -> "PairConfig":
        """Released refine stage: 143 searches, shift 8, no negatives."""
        kw.setdefault("search_size", 143)
        kw.setdefault("neg", 0.0)
        kw.setdefault("search_aug", Augment(shift=8, scale=0.18, blur=0.18))
        return cls(**kw)


class PairDataset(Dataset):
    """Training pairs with all targets; ``dataset[i]`` depends only on ``(seed, i)``.

    Args:
        sources: :class:`Source` objects (validated here at start-up).
        config: :class:`PairConfig`.
        seed: base seed.
        length: nominal pairs per epoch (``len``); any int index is accepted.

    Each item is a dict of numpy arrays: ``template (3, 127, 127)``, ``search (3, S, S)``
    float32 BGR; ``label_cls (k, n, n)`` int64; ``label_loc (4, k, n, n)``,
    ``label_loc_weight (k, n, n)``, ``mask_label (1, S, S)`` (+1/-1), ``mask_weight (n, n)``,
    ``label_sim (1, n, n)`` float32; ``box (4,)`` crop corners; ``negative``, ``has_mask``.

    With ``config.variety`` (:class:`siammask_edu.augment.Variety`) switched on, positive
    searches with a mask may get the target pasted onto another track's frame, a distractor
    from another track behind it and an occluder in front of it (the other tracks are drawn
    from all sources, so a held-out sequence is never seen), the search crop a strong scale
    / aspect change and motion blur, and negative pairs a search of the template's
    category. Labels always describe the true target only.

    See book/09_training_lite.py.
    """

    def __init__(self, sources: list[Source], config: PairConfig = PairConfig(), seed: int = 0,
                 length: int = 1000, validate: bool = True) -> None:
        if not sources:
            raise DataError("PairDataset needs at least one source")
        self.sources = list(sources)
        if validate:
            for s in self.sources:
                s.validate()
        self.config = config
        self.seed = int(seed)
        self.length = int(length)
        probs = np.asarray(config.source_probs if config.source_probs is not None
                           else [len(s) for s in self.sources], np.float64)
        if probs.shape != (len(self.sources),) or probs.sum() <= 0:
            raise DataError(f"source_probs {config.source_probs} do not fit {len(self.sources)} "
                            "sources")
        self.probs = probs / probs.sum()
        self.anchors = crop_anchors(config.score_size, config.search_size)
        # (source, track) indices by COCO category and of the tracks with masks (copy-paste)
        self._by_category: dict[int, list[tuple[int, int]]] = {}
        self._masked: list[tuple[int, int]] = []
        for si, src in enumerate(self.sources):
            for ti, t in enumerate(src.tracks):
                if t.category is not None:
                    self._by_category.setdefault(t.category, []).append((si, ti))
                if t.masks and all(m is not None for m in t.masks):
                    self._masked.append((si, ti))
        if config.variety.needs_pool and len(self._masked) < 2:
            raise DataError("copy-paste, distractor and occlusion need at least two tracks "
                            "with masks")

    def __len__(self) -> int:
        return self.length

    def _pick(self, rng):
        s = self.sources[rng.choice(len(self.sources), p=self.probs)]
        return s, s.tracks[rng.integers(len(s.tracks))]

    def _same_class(self, rng, track: Track) -> tuple[Source, Track] | None:
        """Another track of ``track``'s category (None: no category or no other track)."""
        cands = [(si, ti) for si, ti in self._by_category.get(track.category, ())
                 if self.sources[si].tracks[ti] is not track]
        if track.category is None or not cands:
            return None
        si, ti = cands[int(rng.integers(len(cands)))]
        return self.sources[si], self.sources[si].tracks[ti]

    def _object(self, rng, track: Track, category: bool) -> PasteObject:
        """A masked object of another track (of ``track``'s category with probability
        ``variety.same_class`` when ``category`` and one exists), at a random frame."""
        other = None
        if category and rng.random() < self.config.variety.same_class:
            other = self._same_class(rng, track)
        if other is None:
            while True:  # >= 2 masked tracks (checked at start-up): ends
                si, ti = self._masked[int(rng.integers(len(self._masked)))]
                if self.sources[si].tracks[ti] is not track:
                    break
            other = self.sources[si], self.sources[si].tracks[ti]
        src, t = other
        f = int(rng.integers(len(t.frames)))
        img = src.image(t.frames[f])
        return PasteObject(img, src.mask(t, f, img.shape[:2]), t.boxes[f])

    def _other_frame(self, rng, track: Track, path: Path) -> np.ndarray:
        """A frame of another track (by source probability), not the image ``path``."""
        for _ in range(8):
            src, t = self._pick(rng)
            p = t.frames[int(rng.integers(len(t.frames)))]
            if t is not track and p != path:
                return src.image(p)
        return src.image(p)  # a single-image data set: the same image, at another window

    def _compose(self, crop, wm, box, rng, track: Track, path: Path):
        """Copy-paste, distractor, occlusion of a positive search (see :mod:`.augment`)."""
        v = self.config.variety
        if v.copy_paste and rng.random() < v.copy_paste:
            crop = paste_on_background(crop, wm, self._other_frame(rng, track, path), rng)
        if v.distractor and rng.random() < v.distractor:
            crop = paste_distractor(crop, wm, box, self._object(rng, track, True), rng, v)
        if v.occlusion and rng.random() < v.occlusion:
            source = self._other_frame(rng, track, path)
            obj = self._object(rng, track, False) if v.occluder_object else None
            crop, wm, box, _ = occlude(crop, wm, box, source, obj, rng, v)
        return crop, wm, box

    def __getitem__(self, index: int) -> dict:
        cfg = self.config
        v = cfg.variety
        rng = np.random.default_rng((self.seed, int(index)))
        src, track = self._pick(rng)
        negative = rng.random() < cfg.neg
        gray = rng.random() < cfg.gray
        n = len(track.frames)
        t = int(rng.integers(n))
        if negative:
            other = None
            if v.neg_same_class and rng.random() < v.neg_same_class:
                other = self._same_class(rng, track)  # DaSiamRPN semantic negative
            s_src, s_track = other if other is not None else self._pick(rng)
            s = int(rng.integers(len(s_track.frames)))
        else:
            s_src, s_track = src, track
            lo, hi = max(0, t - src.frame_range), min(n - 1, t + src.frame_range)
            s = int(rng.integers(lo, hi + 1))
        z_img = src.image(track.frames[t])
        x_img = s_src.image(s_track.frames[s])
        x_mask = None if negative else s_src.mask(s_track, s, x_img.shape[:2])
        z, _, _ = make_crop(z_img, track.boxes[t], cfg.template_size, rng, cfg.template_aug, gray)
        compose = None
        if v.needs_pool and not negative:
            def compose(crop, wm, box, rng, _t=s_track, _p=s_track.frames[s]):
                return self._compose(crop, wm, box, rng, _t, _p)
        accept = None
        if v.scale and not negative:
            def accept(b):
                return float(box_iou_anchors(self.anchors, b).max()) >= POS_IOU
        x, box, label = make_crop(x_img, s_track.boxes[s], cfg.search_size, rng, cfg.search_aug,
                                  gray, x_mask, variety=v if v.enabled else None,
                                  compose=compose, accept=accept)
        labels, deltas, weights = anchor_targets(box, self.anchors, rng, negative=negative)
        has_mask = label is not None
        mw = row_weights(labels) if has_mask else np.zeros(labels.shape[1:], np.float32)
        if label is None:
            label = -np.ones((1, cfg.search_size, cfg.search_size), np.float32)
        center = None if negative else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        sim = siamfc_labels(center, cfg.score_size, cfg.search_size, radius=cfg.siamfc_radius)
        return {"template": z, "search": x, "label_cls": labels, "label_loc": deltas,
                "label_loc_weight": weights, "mask_label": label, "mask_weight": mw,
                "label_sim": sim, "box": box, "negative": bool(negative),
                "has_mask": bool(has_mask), "index": int(index)}


class PairSampler(Sampler):
    """Consecutive global indices ``start, start+1, ...`` (the dataset does the shuffling),
    sharded for DDP: with global batch B and W ranks, rank r reads items
    ``[t*B + r*B/W, t*B + (r+1)*B/W)`` of step t, so the W ranks together see exactly the
    batch a single process would.

    Args:
        num_steps: steps to yield, from ``start_step``.
        global_batch: B (divisible by ``world_size``).

    See book/09_training_lite.py.
    """

    def __init__(self, num_steps: int, global_batch: int, start_step: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by {world_size} ranks")
        self.num_steps, self.global_batch = num_steps, global_batch
        self.start_step, self.rank, self.world_size = start_step, rank, world_size

    def __len__(self) -> int:
        return self.num_steps * (self.global_batch // self.world_size)

    def __iter__(self):
        b = self.global_batch // self.world_size
        for t in range(self.start_step, self.start_step + self.num_steps):
            base = t * self.global_batch + self.rank * b
            yield from range(base, base + b)


def collate(items: list[dict]) -> dict:
    """Stack a list of :class:`PairDataset` items into tensors (``torch`` default rules).

    See book/09_training_lite.py.
    """
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        if isinstance(vals[0], np.ndarray):
            out[k] = torch.from_numpy(np.stack(vals))
        else:
            out[k] = torch.tensor(vals)
    return out


def build_sources(spec: list[dict], root=None) -> list[Source]:
    """Sources from a config list, e.g. ``[{"type": "davis", "resolution": "240p",
    "frame_range": 25}, {"type": "coco"}, {"type": "custom", "root": "my_data"}]``.

    Relative ``root`` entries are resolved against ``root`` (default :func:`data_root`).

    Raises:
        DataError: an unknown ``type``.

    See book/09_training_lite.py.
    """
    out = []
    for s in spec:
        s = dict(s)
        kind = s.pop("type")
        default = {"davis": "davis2016", "coco": "coco128"}.get(kind)
        if "root" not in s and default is not None:
            s["root"] = data_root(root) / default
        elif "root" in s and not os.path.isabs(s["root"]):
            s["root"] = data_root(root) / s["root"]
        cls = {"davis": DavisSource, "coco": CocoSource, "custom": CustomSource}.get(kind)
        if cls is None:
            raise DataError(f"unknown source type {kind!r}; expected davis, coco or custom")
        out.append(cls(**s))
    return out


def write_synthetic_sequences(root, num_sequences: int = 2, num_frames: int = 6,
                              size: tuple[int, int] = (160, 120), seed: int = 0) -> Path:
    """Write a small dataset in the custom layout (:class:`CustomSource`): textured frames
    with a moving ellipse, its box in ``groundtruth.txt`` and its mask in ``masks/``.

    Args:
        root: folder to create (sequences ``seq0``, ``seq1``, ...).
        size: frame ``(width, height)`` in pixels.

    Returns:
        ``Path(root)``. For tests and the book: training runs without external data.

    See book/09_training_lite.py.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    for s in range(num_sequences):
        seq = root / f"seq{s}"
        (seq / "frames").mkdir(parents=True, exist_ok=True)
        (seq / "masks").mkdir(exist_ok=True)
        bg = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        lines = []
        for f in range(num_frames):
            cx, cy = w * (0.35 + 0.05 * f), h * (0.45 + 0.02 * f * (-1) ** s)
            ax, ay = w * 0.14, h * 0.18
            mask = np.zeros((h, w), np.uint8)
            cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), 15.0 * f, 0, 360, 1, -1)
            img = bg.copy()
            img[mask > 0] = colour
            cv2.imwrite(str(seq / "frames" / f"{f:05d}.jpg"), img)
            cv2.imwrite(str(seq / "masks" / f"{f:05d}.png"), mask * 255)
            x, y, bw, bh = mask_box(mask)
            lines.append(f"{x:g},{y:g},{bw:g},{bh:g}")
        (seq / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return root


def describe(sources: list[Source]) -> str:
    """One line per source: tracks and frames (for logs).

    See book/09_training_lite.py.
    """
    return "; ".join(f"{s.name}: {len(s.tracks)} tracks, "
                     f"{sum(len(t.frames) for t in s.tracks)} frames" for s in sources)


__all__ = ["Track", "Source", "DavisSource", "CocoSource", "CustomSource", "DataError",
           "Augment", "PairConfig", "PairDataset", "PairSampler", "crop_matrix", "make_crop",
           "mask_box", "collate", "build_sources", "describe", "write_synthetic_sequences",
           "DAVIS2016_VAL", "DAVIS2016_TRAIN_CATEGORY", "Variety"]
