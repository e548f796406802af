"""The online tracker: ``Tracker.init(frame, box)`` then ``Tracker.track(frame)`` per frame.

Released ``siamese_init`` / ``siamese_track`` (``tools/test.py``) with the released
hyper-parameters (:mod:`siammask_edu.config`), its exact crop (:mod:`.geometry`), anchors
(:mod:`.anchors`) and post-processing (:mod:`.postprocess`). A frame is one
:class:`~siammask_edu.step.TrackStep` (crop -> network -> choose RoW -> mask -> fit ->
result), the step every consumer runs (:mod:`siammask_edu.step`). The mask never feeds back
into the state: the next frame is searched around the box branch's estimate (paper §3.3).

Input conventions, checked at the boundary (:func:`~siammask_edu.geometry.as_bgr_uint8`,
:func:`~siammask_edu.geometry.check_box`):

* ``frame``: ``np.ndarray (H, W, 3) uint8``, **RGB** by default (``color_order="bgr"`` for
  OpenCV frames); grayscale ``(H, W)`` / ``(H, W, 1)`` is repeated to 3 channels; a 4th
  (alpha) channel is dropped; any other dtype (float frames included) is a ``ValueError``
  -- convert explicitly, e.g. ``(f * 255).round().astype(np.uint8)`` for a ``[0, 1]`` frame.
  Every frame of a sequence must have the size of the init frame.
* ``box``: ``(x, y, w, h)`` pixels, top-left origin, centre ``x + w/2`` (see
  :mod:`.geometry`). Sizes must be finite and > 0; a box partly outside the frame is
  clipped to the frame; a box wholly outside is a ``ValueError``; a box smaller than
  ``config.min_size`` warns (the tracker enlarges it to that size after the first frame).

See book/07_online_tracker.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from .anchors import anchors_for
from .config import TrackerConfig, tracker_config
from .geometry import (
    as_bgr_uint8,
    check_box,
    crop_subwindow,
    exemplar_crop_size,
    vot_polygon_to_cxcywh,
)
from .precision import PRECISIONS, autocast_for, check_precision, to_float32
from .step import StepHook, TargetState, TrackResult, TrackStep, search_crop


class Tracker:
    """SiamMask online tracker holding all per-target state; the model is shared, read-only.

    Args:
        model: a three-branch :class:`~siammask_edu.models.SiamMask` (sharp: refined 127x127
            masks; base: the mask head's 63x63 masks). It is moved to ``device`` and put
            in eval mode.
        config: a :class:`~siammask_edu.config.TrackerConfig` or a preset name (``"davis"``,
            ``"vot"``, ``"vot-ld"``, ``"base"``).
        device: torch device of the network.
        color_order: ``"rgb"`` (default) or ``"bgr"`` for the frames given to this tracker.
        crop_rounding: ``"python"`` (released) or ``"half_up"`` (pysot) crop placement.
        fast: ``True`` (default): the exact fast path: no dense mask head, exemplar kernels
            computed once, mask and polygon on the RoW's window. ``"fold_all"``: also run a
            BatchNorm-folded NHWC copy of the model (``self.model``, shared by the trackers
            of one model; faster, but outside the equivalence tolerance). ``False``:
            the released work (exemplar convolutions and the dense mask head every frame,
            full-frame thresholding). See book/11_speed.py.
        precision: arithmetic of the network calls (template, search branch and heads,
            refinement / mask head at the chosen RoW). ``"fp32"`` (default): no autocast,
            the exact path that the equivalence tests check against the released code.
            ``"bf16"`` (CPU or CUDA): the calls run under ``torch.autocast(bfloat16)``
            (on a CPU with AMX / AVX512-BF16 oneDNN uses the bf16 instructions; without
            them bf16 is emulated and can be slower than fp32). ``"fp16"``: float16
            autocast, CUDA only. Every network output is converted back to float32
            (:func:`to_float32`) before post-processing, which stays exactly as in fp32
            (float32 / float64 numpy). Not exact: from the same state a frame's box
            moves by a fraction of a pixel (SiamMask-Lite: <= 0.2 px, mask IoU >= 0.998
            against fp32), but the differences feed back through the state, so over a
            sequence the two tracks can drift apart by many pixels while both follow the
            target (measured differences and speed: book/11_speed.py).

    Several trackers may share one model: the template, window, padding colour, state and
    frame size live in the tracker. ``init`` again starts afresh.

    Raises:
        ValueError: for a two-branch model, an unknown preset, colour order or precision,
            or a precision the device does not support (``"fp16"`` on a CPU).

    See book/07_online_tracker.py.
    """

    def __init__(self, model, config: str | TrackerConfig = "davis", device="cpu",
                 color_order: str = "rgb", crop_rounding: str = "python",
                 fast: bool | str = True, precision: str = "fp32") -> None:
        if getattr(model, "box_head", None) is None:
            raise ValueError("Tracker needs a three-branch SiamMask (score, box and mask heads)")
        self.config = tracker_config(config) if isinstance(config, str) else config
        if color_order not in ("rgb", "bgr"):
            raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
        if crop_rounding not in ("python", "half_up"):
            raise ValueError(f"crop_rounding must be 'python' or 'half_up', got {crop_rounding!r}")
        self.device = torch.device(device)
        self.precision = check_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.fast = bool(fast)
        if fast == "fold_all" and isinstance(model, torch.nn.Module):  # opt-in, not exact
            from .export.fold import inference_model

            self.model = inference_model(model, self.device, "all", channels_last=True)
        self.color_order = color_order
        self.crop_rounding = crop_rounding
        self.anchors, self.window = anchors_for(self.config)
        self._target: TargetState | None = None

    @classmethod
    def from_checkpoint(cls, path, config: str | TrackerConfig = "davis", device="cpu",
                        color_order: str = "rgb", preset=None,
                        precision: str = "fp32") -> Tracker:
        """A tracker on a released (or our own) checkpoint, see
        :func:`~siammask_edu.checkpoint.load_released_checkpoint` (``preset`` is passed on;
        ``precision`` as :class:`Tracker`).

        Raises:
            ValueError: an invalid ``precision`` (checked before the file is read).

        See book/07_online_tracker.py.
        """
        from .checkpoint import load_released_checkpoint

        check_precision(precision, device)
        model = load_released_checkpoint(path, preset, map_location=device)
        return cls(model, config, device, color_order, precision=precision)

    @classmethod
    def from_pretrained(cls, name: str = "lite", config: str | TrackerConfig = "davis",
                        device="cpu", color_order: str = "rgb", weights=None,
                        precision: str = "fp32", fast: bool | str = "fold_all") -> Tracker:
        """A tracker on the weights shipped inside the package (offline, no download).

        The file is ``siammask_edu/weights/siammask_<name>.pth`` read with
        :mod:`importlib.resources`, unless ``weights`` or the environment variable
        ``SIAMMASK_EDU_WEIGHTS`` (a file, or a folder holding ``siammask_<name>.pth``)
        points elsewhere. If the file carries a calibrated ``lost_score`` or ``seg_thr``
        (written by ``scripts/export_lite.py`` from ``scripts/calibrate_lost.py``, which
        calibrates both on DAVIS-2016 *train* sequences) and ``config`` is a preset name,
        they replace the preset's values; a :class:`TrackerConfig` passed in is used as
        given.

        The shipped model runs folded by default (``fast="fold_all"``: BatchNorm folded
        into the convolutions, channels-last): SiamMask-Lite has no released counterpart to
        reproduce bit for bit, folding changes its features by ~1e-6 relative (measured),
        and it makes the EfficientNet backbone ~1.8x faster on a CPU (30.6 -> 16.8 ms per
        255x255 search on 2 threads; book/11_speed.py). ``fast=True`` runs the unfolded
        network.

        Args:
            name: ``"lite"`` (SiamMask-Lite, EfficientNet-Lite0).
            config: tracker preset name or :class:`TrackerConfig`.
            device, color_order: as :class:`Tracker`.
            weights: explicit checkpoint path (wins over the environment variable and the
                shipped file).
            precision: ``"fp32"`` (exact), ``"bf16"`` or ``"fp16"`` (CUDA), as
                :class:`Tracker`.
            fast: as :class:`Tracker`; default ``"fold_all"`` (see above).

        Raises:
            ValueError: an unknown ``name`` or an invalid ``precision``.
            FileNotFoundError: the weights are not in this build (and none were given).

        See book/09_training_lite.py.
        """
        from importlib import resources

        from .checkpoint import load_checkpoint, read_state_file

        check_precision(precision, device)
        with resources.as_file(pretrained_path(name, weights)) as path:
            model = load_checkpoint(path, map_location=device)
            extra = read_state_file(path).get("extra") or {}
        cfg = tracker_config(config) if isinstance(config, str) else config
        if isinstance(config, str):  # calibrated for these weights (see above)
            calibrated = {k: float(extra[k]) for k in ("lost_score", "seg_thr")
                          if isinstance(extra.get(k), (int, float))}
            cfg = cfg.replace(**calibrated)
        return cls(model, cfg, device, color_order, fast=fast, precision=precision)

    # -- state ------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self._target is not None

    @property
    def target(self) -> TargetState:
        """The live per-target state (template, padding colour, frame size, centre, size)
        that :attr:`stepper` advances; :meth:`set_target` is the checked way to change it.

        Raises:
            RuntimeError: before :meth:`init`.

        See book/07_online_tracker.py.
        """
        self._require_init()
        return self._target

    @property
    def stepper(self) -> TrackStep:
        """The :class:`~siammask_edu.step.TrackStep` of this tracker's current settings
        (model, config, anchors, window, device, precision, fast, crop rounding), built on
        each access so that a changed ``config`` (e.g. ``box_strategy``) takes effect.

        See book/07_online_tracker.py.
        """
        return TrackStep(self.model, self.config, self.anchors, self.window,
                         device=self.device, precision=self.precision, fast=self.fast,
                         crop_rounding=self.crop_rounding)

    @property
    def center(self) -> tuple[float, float]:
        """Current ``(cx, cy)``, frame pixels."""
        c = self.target.center
        return float(c[0]), float(c[1])

    @property
    def size(self) -> tuple[float, float]:
        """Current ``(w, h)``, frame pixels."""
        s = self.target.size
        return float(s[0]), float(s[1])

    @property
    def frame_size(self) -> tuple[int, int]:
        """``(H, W)`` of the init frame."""
        return self.target.frame_hw

    def set_target(self, center: Sequence[float], size: Sequence[float]) -> None:
        """Overwrite the tracked state (teacher forcing, re-detection); the template stays.

        Raises:
            ValueError: for non-finite values or a size that is not > 0.

        See book/07_online_tracker.py.
        """
        self._require_init()
        c, s = np.asarray(center, np.float64).reshape(2), np.asarray(size, np.float64).reshape(2)
        if not (np.all(np.isfinite(c)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"invalid state: center={c.tolist()}, size={s.tolist()}")
        self._target.center, self._target.size = c.copy(), s.copy()

    def _require_init(self) -> None:
        if self._target is None:
            raise RuntimeError("call Tracker.init(frame, box) first")

    # -- init ---------------------------------------------------------------------------
    def init(self, frame, box: Sequence[float]) -> None:
        """Start tracking the object in ``box`` (``(x, y, w, h)``, see module docstring).

        Raises:
            ValueError: bad frame (dtype, shape) or box (non-finite, w/h <= 0, outside).

        See book/07_online_tracker.py.
        """
        bgr = as_bgr_uint8(frame, self.color_order)
        center, size = check_box(box, bgr.shape[:2], self.config.min_size)
        self._init_state(bgr, center, size)

    def init_polygon(self, frame, polygon: Sequence[float]) -> None:
        """Start from a VOT rotated box (8 numbers) with the released
        ``get_axis_aligned_bbox`` rule (:func:`~siammask_edu.geometry.vot_polygon_to_cxcywh`):
        centre = corner mean, area-preserving ``w``/``h`` plus 1. The state is used as
        computed (no clipping), as in the released VOT driver.

        Raises:
            ValueError: bad frame, non-finite or degenerate polygon, or a box wholly
                outside the frame.

        See book/07_online_tracker.py.
        """
        bgr = as_bgr_uint8(frame, self.color_order)
        cx, cy, w, h = vot_polygon_to_cxcywh(polygon)
        check_box((cx - w / 2, cy - h / 2, w, h), bgr.shape[:2], self.config.min_size)
        self._init_state(bgr, np.array([cx, cy]), np.array([w, h]))

    def _init_state(self, bgr: np.ndarray, center: np.ndarray, size: np.ndarray) -> None:
        cfg = self.config
        avg_chans = np.mean(bgr, axis=(0, 1))  # float64, BGR
        s_z = max(1, exemplar_crop_size(size, cfg.context_amount))
        z = crop_subwindow(bgr, center, cfg.exemplar_size, s_z, avg_chans,
                           rounding=self.crop_rounding)
        with torch.inference_mode():
            with autocast_for(self.precision, self.device):
                ex = self.model.template(z.to(self.device))
            ex = to_float32(ex)
        self._target = TargetState(exemplar=ex, avg_chans=avg_chans,
                                   frame_hw=(int(bgr.shape[0]), int(bgr.shape[1])),
                                   center=np.asarray(center, np.float64).copy(),
                                   size=np.asarray(size, np.float64).copy())

    # -- track --------------------------------------------------------------------------
    def search_crop(self, frame) -> torch.Tensor:
        """The search crop ``Tensor[1, 3, 255, 255]`` (BGR 0..255) the next :meth:`track`
        would feed the network, cut at the current state
        (:func:`~siammask_edu.step.search_crop`).

        Raises:
            RuntimeError: before :meth:`init`.
            ValueError: bad frame or a frame size different from the init frame's.

        See book/07_online_tracker.py.
        """
        t = self.target
        bgr = as_bgr_uint8(frame, self.color_order)
        if bgr.shape[:2] != t.frame_hw:
            raise ValueError(f"frame size {bgr.shape[1]}x{bgr.shape[0]} (WxH) differs from the "
                             f"init frame's {t.frame_hw[1]}x{t.frame_hw[0]}")
        return search_crop(bgr, t.center, t.size, t.avg_chans, self.config, self.crop_rounding)

    def track(self, frame, hook: StepHook | None = None) -> TrackResult:
        """Track the target into ``frame`` (same size as the init frame).

        Args:
            frame: in this tracker's colour order (module docstring).
            hook: an optional :class:`~siammask_edu.step.StepHook` that times or records
                the step's stages (it does not change the result).

        Returns:
            :class:`TrackResult` (mask, polygon, box, score, RoW, lost).

        Raises:
            RuntimeError: before :meth:`init`.
            ValueError: bad frame or a frame size different from the init frame's.

        See book/07_online_tracker.py.
        """
        self._require_init()
        return self.step(as_bgr_uint8(frame, self.color_order), hook)

    def step(self, bgr: np.ndarray, hook: StepHook | None = None) -> TrackResult:
        """:meth:`track` on a frame that is already BGR ``uint8`` (H, W, 3), whatever this
        tracker's ``color_order``: one :class:`~siammask_edu.step.TrackStep` on
        :attr:`target`.

        Raises:
            RuntimeError: before :meth:`init`.
            ValueError: a frame size different from the init frame's.

        See book/07_online_tracker.py.
        """
        return self.stepper(bgr, [self.target], hook=hook)[0]

    def track_sequence(self, frames: Iterable, box: Sequence[float]) -> Iterator[TrackResult]:
        """Init on the first frame, then yield one :class:`TrackResult` per later frame.

        Args:
            frames: any iterable of frames (list, generator, video reader).
            box: ``(x, y, w, h)`` on the first frame, or 8 numbers (a VOT rotated box,
                :meth:`init_polygon`).

        Yields:
            :class:`TrackResult` for frames 1, 2, ... (nothing for the init frame, so a
            sequence of N frames gives N - 1 results).

        Raises:
            ValueError: an empty ``frames`` or the errors of :meth:`init` / :meth:`track`.

        See book/07_online_tracker.py.
        """
        _, rest = self.init_sequence(frames, box)
        for frame in rest:
            yield self.track(frame)

    def init_sequence(self, frames: Iterable, box: Sequence[float]) -> tuple[np.ndarray, Iterator]:
        """Initialise on the first frame of ``frames``: :meth:`init` for ``(x, y, w, h)``,
        :meth:`init_polygon` for 8 numbers (a VOT rotated box).

        Returns:
            ``(first, rest)``: the first frame and an iterator over the remaining ones.

        Raises:
            ValueError: an empty ``frames`` or the errors of :meth:`init` /
                :meth:`init_polygon`.

        See book/07_online_tracker.py.
        """
        it = iter(frames)
        try:
            first = next(it)
        except StopIteration:
            raise ValueError("frames is empty") from None
        if np.size(box) == 8:
            self.init_polygon(first, box)
        else:
            self.init(first, box)
        return first, it


PRETRAINED = {"lite": "siammask_lite.pth"}
WEIGHTS_ENV = "SIAMMASK_EDU_WEIGHTS"


def pretrained_path(name: str = "lite", weights=None):
    """Where :meth:`Tracker.from_pretrained` finds the weights of ``name``.

    Order: ``weights`` (a file), ``$SIAMMASK_EDU_WEIGHTS`` (a file, or a folder holding
    ``siammask_<name>.pth``), then the file shipped in the package
    (``importlib.resources``: ``siammask_edu/weights/siammask_<name>.pth``).

    Returns:
        pathlib.Path of an existing file (for the shipped file, the
        ``importlib.resources`` Traversable: a Path for an installed package; open it with
        ``importlib.resources.as_file``).

    Raises:
        ValueError: an unknown ``name``.
        FileNotFoundError: the file is missing (the message says how to get weights).

    See book/09_training_lite.py.
    """
    import os
    from importlib import resources
    from pathlib import Path

    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {sorted(PRETRAINED)}")
    fname = PRETRAINED[name]
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"weights file {p} does not exist")
        return p
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        p = Path(env).expanduser()
        p = p / fname if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"${WEIGHTS_ENV} points to {p}, which does not exist")
        return p
    shipped = resources.files("siammask_edu").joinpath("weights", fname)
    if not shipped.is_file():
        raise FileNotFoundError(
            f"the SiamMask-Lite weights are not in this build (no weights/{fname} in the "
            "siammask_edu package); train them with `siammask-edu train "
            "configs/train_lite.json` and export them with `python scripts/export_lite.py`, "
            f"or pass a checkpoint: Tracker.from_pretrained({name!r}, weights=PATH), "
            f"${WEIGHTS_ENV}=PATH or Tracker.from_checkpoint(PATH)")
    return shipped


__all__ = ["PRECISIONS", "TrackResult", "Tracker", "as_bgr_uint8", "autocast_for",
           "check_precision", "pretrained_path", "to_float32"]
# TrackResult lives in siammask_edu.step (the step builds it); it stays importable from here.
