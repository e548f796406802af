"""Data variety for training recipe v2: copy-paste, distractors, strong scale, motion blur, occlusion.

Every operation here works on one **search crop** in crop pixels (the target box
``(x1, y1, x2, y2)`` and the warped mask as ``float32 [S, S]`` in 0..1, before the
``> 0.5`` threshold that makes the label), so that labels are produced by the same code as
the released augmentation and stay consistent with the pixels:

* **target copy-paste** (:func:`paste_on_background`): the target, cut out by its own mask,
  is laid over a background taken from a frame of *another* track (DAVIS frame or COCO
  image). Box and mask label are unchanged; the template still comes from the target's own
  frame, so the pair says "find this object, whatever surrounds it" (Ghiasi et al. 2021,
  simple copy-paste; Dwibedi et al. 2017, cut-paste-learn).
* **distractor** (:func:`paste_distractor`): a masked object of another track (the same
  category when one is known, see ``Variety.same_class``), scaled to the target's size
  and put *behind* the target near it. Labels stay on the true target only, so the score
  branch has to tell a similar-looking object from the template's own (DaSiamRPN,
  Zhu et al. 2018, distractor-aware training). The distractor is never an exact copy of the
  target: two identical objects give the network no cue to prefer one, which is label
  noise rather than a hard negative.
* **strong scale / aspect change** (:func:`strong_scale`): the search crop map is
  rescaled about the target centre by ``f * sqrt(a)`` horizontally and ``f / sqrt(a)``
  vertically, ``f`` and ``a`` log-uniform in ``[1/scale_max, scale_max]`` and
  ``[1/aspect_max, aspect_max]``. Box and mask come from the same transformed map. The
  released anchors have a single scale (64 px at a 255 search): a target more than about
  1.3x larger or smaller than that has no anchor with IoU >= 0.6 and, beyond about 1.8x,
  every anchor is labelled *negative* (IoU < 0.3) - the enlarged target would be taught as
  background. Measured on DAVIS-2016 train + COCO-128 (300 positive pairs, strong scale
  always on, aspect 1.5): 55 % of the pairs keep a positive anchor with ``scale_max`` 1.6,
  41 % with 2, 25 % with 3 (99 % without). So ``scale_max`` defaults to 1.6 and a draw
  that leaves no positive anchor is redrawn (``scale_tries``): the box branch sees the
  largest growth and shrinkage the anchors can label, never a visible target taught as
  background.
* **motion blur** (:func:`motion_blur`): a normalised line kernel of random length and
  direction applied with ``cv2.filter2D``; labels unchanged (the annotation of a blurred
  frame is still the object's sharp extent).
* **occlusion** (:func:`occlude`): a patch from another image (a rectangle, or an object
  cut out by its mask) is put *in front of* the target, covering a random part of it. The
  mask label then **excludes** the covered pixels - the DAVIS convention: masks annotate
  the visible object only, and the tracker's mask should follow what is visible. The
  **box keeps the target's full extent**: a box shrunk to the visible part left 10-20 % of
  the occluded pairs in a first version without any positive anchor (the target's
  anchors fell under IoU 0.6), so the score branch never learnt that a partly hidden
  target is still the target; and in the tracker a box that shrinks under a passing
  occluder shrinks the next search crop with it. An occluder that would leave less than
  ``min_visible`` of the target mask visible is not applied.

Geometry uses OpenCV (``cv2.warpAffine``, ``cv2.filter2D``); all random numbers come from
the sample's ``numpy.random.Generator``, so a pair still depends only on (seed, index).
See book/09_training_lite.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import cv2
import numpy as np


@dataclass(frozen=True)
class Variety:
    """Switches and amplitudes of the v2 augmentations; all off by default (v1 recipe).

    Attributes:
        copy_paste: probability that a positive search with a mask is the target pasted
            onto another track's frame.
        distractor: probability of a distractor object pasted behind the target.
        same_class: probability that a distractor (and a semantic negative) is drawn from
            the target's category when the track has one (COCO ``coco_category_id``, the
            DAVIS table ``DAVIS2016_TRAIN_CATEGORY``); else any other track.
        neg_same_class: probability that a *negative* pair's search shows another object of
            the template's category (DaSiamRPN's semantic negative pairs).
        distractor_dist: centre distance of the distractor from the target, in units of
            the target size ``sqrt(w h)`` (uniform).
        distractor_size: distractor size ``sqrt(w h)`` relative to the target's (log-uniform).
        scale: probability of a strong scale / aspect change of the search crop.
        scale_max: object scale factor log-uniform in ``[1/scale_max, scale_max]``.
        aspect_max: aspect factor (w/h multiplied by it) log-uniform in
            ``[1/aspect_max, aspect_max]``.
        scale_tries: draws of ``(f, a)`` until one leaves the target some anchor with IoU
            >= 0.6 (checked by :class:`~siammask_edu.datasets.PairDataset`); none: no strong
            scale for that pair.
        motion_blur: probability of a directional blur of the search crop.
        blur_len: kernel length range in crop pixels (inclusive, odd lengths); up to 11
            px against a ~64 px target (17 px, tried first, smeared the target beyond
            what 240p DAVIS motion shows).
        occlusion: probability of an occluder over part of the target.
        occlusion_side: occluder side as a fraction of the target box side (uniform, per axis).
        occluder_object: probability that the occluder is an object cut out by its mask
            (else a rectangular patch of another image).
        min_visible: an occluder is not applied if less than this fraction of the target
            mask would stay visible.

    See book/09_training_lite.py.
    """

    copy_paste: float = 0.0
    distractor: float = 0.0
    same_class: float = 0.5
    neg_same_class: float = 0.0
    distractor_dist: tuple[float, float] = (0.8, 1.6)
    distractor_size: tuple[float, float] = (0.8, 1.25)
    scale: float = 0.0
    scale_max: float = 1.6
    aspect_max: float = 1.5
    scale_tries: int = 4
    motion_blur: float = 0.0
    blur_len: tuple[int, int] = (3, 11)
    occlusion: float = 0.0
    occlusion_side: tuple[float, float] = (0.3, 0.7)
    occluder_object: float = 0.5
    min_visible: float = 0.3

    @property
    def enabled(self) -> bool:
        """True if any augmentation is switched on (else the released v1 code path runs)."""
        return any((self.copy_paste, self.distractor, self.neg_same_class, self.scale,
                    self.motion_blur, self.occlusion))

    @property
    def needs_pool(self) -> bool:
        """True if pairs need objects/backgrounds of other tracks."""
        return any((self.copy_paste, self.distractor, self.occlusion))

    @classmethod
    def from_dict(cls, d: dict | None) -> Variety:
        """From a JSON dict (``TrainConfig.variety``); lists become tuples.

        Raises:
            ValueError: an unknown key (the message lists it).
        """
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown variety keys {sorted(unknown)}; expected {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class PasteObject:
    """An object cut out of a frame, to paste: the frame (BGR uint8 ``[H, W, 3]``), its mask
    (uint8 ``[H, W]`` in {0, 1}) and box ``(x, y, w, h)`` in frame pixels.

    See book/09_training_lite.py.
    """

    image: np.ndarray
    mask: np.ndarray
    box: np.ndarray


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def strong_scale(M: np.ndarray, box_xywh, rng: np.random.Generator, v: Variety) -> np.ndarray:
    """Compose a frame -> crop map with a scale / aspect change about the target centre.

    Args:
        M (np.ndarray[2, 3] float64): frame -> crop map (:func:`crop_matrix`).
        box_xywh: target box in frame pixels.
        rng: draws ``f`` then ``a`` (log-uniform, see :class:`Variety`).

    Returns:
        np.ndarray[2, 3] float64: the new map; the target's crop box is scaled by
        ``(f sqrt(a), f / sqrt(a))`` about its own centre, which stays where ``M`` put it
        (so the released shift still decides where the target is).

    See book/09_training_lite.py.
    """
    f = _log_uniform(rng, 1 / v.scale_max, v.scale_max)
    a = _log_uniform(rng, 1 / v.aspect_max, v.aspect_max)
    fx, fy = f * math.sqrt(a), f / math.sqrt(a)
    x, y, w, h = (float(t) for t in box_xywh)
    cx, cy = M @ np.array([x + w / 2, y + h / 2, 1.0])
    S = np.array([[fx, 0, cx * (1 - fx)], [0, fy, cy * (1 - fy)], [0, 0, 1]])
    return (S @ np.vstack([M, [0, 0, 1]]))[:2]


def _warp(image: np.ndarray, A: np.ndarray, size: int, border=0.0) -> np.ndarray:
    if image.ndim == 3:
        border = tuple(float(b) for b in np.broadcast_to(border, (3,)))
    return cv2.warpAffine(image, A, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def _background_map(shape: tuple[int, int], size: int, rng: np.random.Generator) -> np.ndarray:
    """A map from a random square window (side 40-100 % of the short side) of an image of
    ``shape`` to a ``size`` crop."""
    h, w = shape
    side = min(h, w) * rng.uniform(0.4, 1.0)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    k = size / side
    return np.array([[k, 0, -k * x0], [0, k, -k * y0]], np.float64)


def _object_map(obj_box, center, side: float) -> np.ndarray:
    """A map taking the centre of ``obj_box`` (x, y, w, h) to ``center`` and its size
    ``sqrt(w h)`` to ``side`` (crop pixels)."""
    x, y, w, h = (float(t) for t in obj_box)
    k = side / math.sqrt(max(w * h, 1.0))
    return np.array([[k, 0, center[0] - k * (x + w / 2)],
                     [0, k, center[1] - k * (y + h / 2)]], np.float64)


def _blend(crop: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return (crop.astype(np.float32) * (1 - a) + layer.astype(np.float32) * a).astype(np.float32)


def paste_on_background(crop: np.ndarray, wmask: np.ndarray, background: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """The target (``crop`` where ``wmask``) over a random window of ``background``.

    Args:
        crop (np.ndarray[S, S, 3] float32/uint8): the target's search crop, BGR 0..255.
        wmask (np.ndarray[S, S] float32): its warped mask in 0..1 (used as alpha; the
            bilinear warp gives a 1-3 px soft edge, so no hard cut-out border is left for
            the network to key on).
        background (np.ndarray[H, W, 3] uint8): another track's frame.

    Returns:
        np.ndarray[S, S, 3] float32: the composite; the target's box and mask are unchanged.

    See book/09_training_lite.py.
    """
    size = crop.shape[0]
    bg = _warp(background, _background_map(background.shape[:2], size, rng), size)
    return _blend(bg, crop, np.clip(wmask, 0, 1))


def paste_distractor(crop: np.ndarray, wmask: np.ndarray, box, obj: PasteObject,
                     rng: np.random.Generator, v: Variety) -> np.ndarray:
    """Paste ``obj`` behind the target, near it, at about the target's size.

    Args:
        crop (np.ndarray[S, S, 3]): search crop, BGR 0..255.
        wmask (np.ndarray[S, S] float32): target mask in 0..1 (the target stays in front).
        box: target ``(x1, y1, x2, y2)`` in crop pixels.
        obj: the distractor (frame, mask, box in frame pixels).
        rng: draws direction, distance (``distractor_dist``) and size (``distractor_size``).

    Returns:
        np.ndarray[S, S, 3] float32: the composite; the labels (target only) are unchanged.

    See book/09_training_lite.py.
    """
    size = crop.shape[0]
    x1, y1, x2, y2 = (float(t) for t in box)
    t_side = math.sqrt(max((x2 - x1) * (y2 - y1), 1.0))
    theta = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(*v.distractor_dist) * t_side
    c = (float(np.clip((x1 + x2) / 2 + dist * math.cos(theta), 0, size - 1)),
         float(np.clip((y1 + y2) / 2 + dist * math.sin(theta), 0, size - 1)))
    A = _object_map(obj.box, c, t_side * _log_uniform(rng, *v.distractor_size))
    layer = _warp(obj.image, A, size)
    alpha = _warp(obj.mask.astype(np.float32), A, size)
    alpha = np.clip(alpha, 0, 1) * (1 - np.clip(wmask, 0, 1))
    return _blend(crop, layer, alpha)


def occlude(crop: np.ndarray, wmask: np.ndarray, box, source: np.ndarray,
            obj: PasteObject | None, rng: np.random.Generator, v: Variety):
    """An occluder in front of part of the target; the mask label loses the covered pixels.

    Args:
        crop (np.ndarray[S, S, 3]): search crop, BGR 0..255.
        wmask (np.ndarray[S, S] float32): target mask in 0..1.
        box: target ``(x1, y1, x2, y2)`` in crop pixels.
        source (np.ndarray[H, W, 3] uint8): another frame (rectangular patch source).
        obj: an object to use as occluder with probability ``occluder_object`` (None: a
            rectangle always).
        rng: draws the occluder's size (``occlusion_side`` of the box sides), its centre
            (uniform over the target box) and its content.

    Returns:
        ``(crop, wmask, box, applied)``: the composite (float32), the visible mask
        ``wmask * (1 - alpha)``, the box unchanged (the target's full extent, see the
        module docstring; ``np.ndarray[4] float32``), and whether the occluder was applied
        (not if less than ``min_visible`` of the mask would stay visible; then the inputs
        come back unchanged).

    See book/09_training_lite.py.
    """
    size = crop.shape[0]
    x1, y1, x2, y2 = (float(t) for t in box)
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    pw, ph = bw * rng.uniform(*v.occlusion_side), bh * rng.uniform(*v.occlusion_side)
    cx, cy = rng.uniform(x1, x2), rng.uniform(y1, y2)
    use_obj = obj is not None and rng.random() < v.occluder_object
    if use_obj:
        A = _object_map(obj.box, (cx, cy), math.sqrt(pw * ph))
        layer = _warp(obj.image, A, size)
        alpha = np.clip(_warp(obj.mask.astype(np.float32), A, size), 0, 1)
    else:
        # a random window of the source, of the patch's aspect, mapped onto the patch
        h, w = source.shape[:2]
        k = rng.uniform(0.5, 2.0)  # source pixels per crop pixel, within the source's size
        sw, sh = min(pw * k, w), min(ph * k, h)
        sx, sy = rng.uniform(0, w - sw), rng.uniform(0, h - sh)
        A = np.array([[pw / sw, 0, cx - pw / 2 - sx * pw / sw],
                      [0, ph / sh, cy - ph / 2 - sy * ph / sh]], np.float64)
        layer = _warp(source, A, size)
        alpha = np.zeros((size, size), np.float32)
        # integer rectangle [round(cx - pw/2), round(cx + pw/2)): the occluded pixels exactly
        r0, r1 = round(cy - ph / 2), round(cy + ph / 2)
        c0, c1 = round(cx - pw / 2), round(cx + pw / 2)
        alpha[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = 1.0
    visible = np.clip(wmask, 0, 1) * (1 - alpha)
    before = float((wmask > 0.5).sum())
    after = float((visible > 0.5).sum())
    if before == 0 or after < v.min_visible * before:
        return crop, wmask, np.asarray(box, np.float32), False
    return _blend(crop, layer, alpha), visible.astype(np.float32), np.asarray(box, np.float32), True


def motion_kernel(rng: np.random.Generator, v: Variety) -> np.ndarray:
    """A directional blur kernel: a 1-px line of odd length ``L`` in ``blur_len`` through
    the centre at a uniform angle, made symmetric under a half turn (the rasterised line
    is not), so that its centroid is the centre and the blurred object does not move
    against its label; normalised to sum 1.

    Returns:
        np.ndarray[L, L] float32.

    See book/09_training_lite.py.
    """
    lo, hi = v.blur_len
    length = int(rng.integers(lo // 2, hi // 2 + 1)) * 2 + 1
    theta = rng.uniform(0, math.pi)
    k = np.zeros((length, length), np.float32)
    c, r = length // 2, (length - 1) / 2
    shift = 4  # sub-pixel end points (cv2 fixed point, 1/16 px)
    p0 = (round((c - r * math.cos(theta)) * 16), round((c - r * math.sin(theta)) * 16))
    p1 = (round((c + r * math.cos(theta)) * 16), round((c + r * math.sin(theta)) * 16))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_8, shift)
    k = k + k[::-1, ::-1]
    if k.sum() <= 0:  # cannot happen for L >= 1, kept as a guard against a degenerate line
        k[c, c] = 1.0
    return k / k.sum()


def motion_blur(crop: np.ndarray, rng: np.random.Generator, v: Variety) -> np.ndarray:
    """``crop`` (``[S, S, 3]`` float32) filtered by :func:`motion_kernel` (border: reflect).

    See book/09_training_lite.py.
    """
    return cv2.filter2D(crop, -1, motion_kernel(rng, v), borderType=cv2.BORDER_REFLECT_101)


__all__ = ["PasteObject", "Variety", "motion_blur", "motion_kernel", "occlude",
           "paste_distractor", "paste_on_background", "strong_scale"]
