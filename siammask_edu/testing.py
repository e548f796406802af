"""Helpers for tests and for the book's "derive, then verify" cells.

* :func:`compare` — makemore's ``cmp``: prints *exact / allclose / maxdiff* for a value we
  derived against a reference and **asserts** that they are close, so that a notebook cell
  becomes a test under nbval;
* :func:`tiny_model` — a seeded ``tiny`` SiamMask on the CPU (detectron2's
  ``get_model_no_weights`` idea): the real geometry at a fraction of the cost;
* :func:`random_boxes` — valid ``xywh`` boxes inside a frame (detectron2's ``random_boxes``);
* :func:`synthetic_frame` — a deterministic RGB frame with a few shapes on a textured
  background, for tests that need an image but no dataset;
* :func:`lite_or_seeded` — the shipped SiamMask-Lite network for the chapters whose point is
  what the tracker does on a real object, or the book's seeded checkpoint in a build without
  the weights;
* :func:`released_layout_network` — the book's seeded checkpoint, or without the reference
  fixtures the same network freshly initialised;
* :func:`book_sequence` — DAVIS ``car-shadow`` (or another sequence) when the data is here,
  else the shipped ``synthetic_ellipse`` sample with its exact masks;
* :func:`skipped_reference_check`, :func:`missing_data_note` — the one line a chapter prints
  where a check or a figure needs what a learner's checkout lacks;
* :func:`skip_missing_data` — the tests' skip for absent data, which
  ``SIAMMASK_EDU_REQUIRE_DATA=1`` (set by ``.ci/run``) turns into a failure.

See book/03_depthwise_xcorr.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch


class Comparison(NamedTuple):
    """Result of :func:`compare`: bit-exact, allclose, and the largest absolute difference.

    In a notebook, a cell ending with ``compare(...)`` shows only the line that
    :func:`compare` printed, not this tuple a second time; ``print(result)`` shows it.
    """

    exact: bool
    close: bool
    maxdiff: float

    def _ipython_display_(self) -> None:
        """Show nothing: :func:`compare` has already printed its one-line summary."""


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def compare(name: str, ours, ref, atol: float = 1e-5, rtol: float = 1e-5) -> Comparison:
    """Compare ``ours`` with ``ref``, print one line, and assert that they are allclose.

    The line reads ``name | exact: True | allclose: True | maxdiff: 0.000e+00``
    (makemore's ``cmp``). Closeness is ``|ours - ref| <= atol + rtol * |ref|`` elementwise
    (``numpy.allclose``), computed in float64.

    Args:
        name: what is compared, printed first.
        ours: our value: ``np.ndarray``, ``torch.Tensor`` (any device, grad or not), a
            Python number or a nested list.
        ref: the reference value, same shape (no broadcasting: a shape mismatch fails).
        atol, rtol: tolerances of ``numpy.allclose``.

    Returns:
        :class:`Comparison` ``(exact, close, maxdiff)``.

    Raises:
        AssertionError: if the shapes differ, or if the values are not allclose; the
            message gives the largest absolute difference and where it occurs.

    See book/03_depthwise_xcorr.py.
    """
    a, b = _to_numpy(ours), _to_numpy(ref)
    if a.shape != b.shape:
        print(f"{name:<28s} | shape mismatch: ours {a.shape} vs ref {b.shape}")
        raise AssertionError(f"{name}: shape mismatch, ours {a.shape} vs ref {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = bool(np.array_equal(a64, b64))
    close = bool(np.allclose(a64, b64, atol=atol, rtol=rtol))
    diff = np.abs(a64 - b64)
    if diff.size == 0:
        maxdiff = 0.0
    elif np.isnan(diff).any():
        maxdiff = float("nan")
    else:
        maxdiff = float(diff.max())
    print(f"{name:<28s} | exact: {exact!s:5s} | allclose: {close!s:5s} | maxdiff: {maxdiff:.3e}")
    if not close:
        # report the element that violates the tolerance the most (NaNs first)
        excess = np.where(np.isnan(diff), np.inf, diff - (atol + rtol * np.abs(b64)))
        idx = np.unravel_index(int(np.argmax(excess)), diff.shape)
        raise AssertionError(
            f"{name}: not allclose (atol={atol}, rtol={rtol}): max |diff| = {maxdiff:.3e}; "
            f"worst element at index {tuple(int(i) for i in idx)}: ours {float(a64[idx])!r}, "
            f"ref {float(b64[idx])!r}"
        )
    return Comparison(exact, close, maxdiff)


def tiny_model(seed: int = 0, preset: str = "tiny"):
    """A freshly initialised SiamMask (default ``tiny`` preset), seeded, on CPU, eval mode.

    The global torch RNG is left untouched (the seed is applied inside ``fork_rng``), so
    calling this in the middle of a test does not change what the test draws next.

    Args:
        seed: the initialisation seed; the same seed gives the same weights.
        preset: any model preset name (``tiny``, ``sharp``, ``base``, ...).

    Returns:
        :class:`~siammask_edu.models.SiamMask` in eval mode.
    """
    from .models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(preset)
    return model.cpu().eval()


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def random_boxes(n: int, frame_size: tuple[int, int], rng=None, min_size: float = 2.0
                 ) -> np.ndarray:
    """``n`` random valid boxes inside a frame.

    Args:
        n: number of boxes.
        frame_size: ``(height, width)`` of the frame in pixels (the order of
            ``frame.shape[:2]``).
        rng: ``np.random.Generator``, a seed, or ``None`` (fresh entropy).
        min_size: smallest width and height, pixels.

    Returns:
        np.ndarray[n, 4] float64: boxes ``xywh`` (top-left corner, width, height; 0-based
        pixels), each with ``x >= 0``, ``y >= 0``, ``x + w <= width``, ``y + h <= height`` and
        ``w, h >= min_size``.

    Raises:
        ValueError: if the frame is smaller than ``min_size`` in either direction.
    """
    h_img, w_img = (float(s) for s in frame_size)
    if h_img < min_size or w_img < min_size:
        raise ValueError(f"frame {frame_size} is smaller than min_size {min_size}")
    g = _as_rng(rng)
    w = g.uniform(min_size, w_img, n)
    h = g.uniform(min_size, h_img, n)
    x = g.uniform(0.0, 1.0, n) * (w_img - w)
    y = g.uniform(0.0, 1.0, n) * (h_img - h)
    return np.stack([x, y, w, h], axis=1)


def synthetic_frame(h: int = 480, w: int = 640, seed: int = 0, return_mask: bool = False):
    """A deterministic RGB test frame: a smooth gradient, mild noise and a few solid shapes.

    Args:
        h, w: frame size in pixels.
        seed: the same seed gives the same frame.
        return_mask: also return the mask of the target (the bright ellipse, drawn last).

    Returns:
        np.ndarray[h, w, 3] uint8, **RGB**; with ``return_mask``, also
        np.ndarray[h, w] bool, the target's pixels.
    """
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([
        60 + 80 * xx / max(w - 1, 1),
        60 + 80 * yy / max(h - 1, 1),
        np.full_like(xx, 90.0),
    ], axis=2)
    base += g.normal(0.0, 6.0, base.shape).astype(np.float32)
    frame = np.clip(base, 0, 255).astype(np.uint8)
    frame = np.ascontiguousarray(frame)
    mask = np.zeros((h, w), np.uint8)
    # two distractors (drawn first: the target is on top and its mask is exact)
    for _ in range(2):
        px, py = int(g.uniform(0, w)), int(g.uniform(0, h))
        s = max(2, int(min(h, w) * g.uniform(0.05, 0.1)))
        c = tuple(int(v) for v in g.integers(0, 120, 3))
        if g.uniform() < 0.5:
            cv2.rectangle(frame, (px - s, py - s), (px + s, py + s), c, -1)
        else:
            cv2.circle(frame, (px, py), s, c, -1)
    # the target: an ellipse around the centre, a third of the frame
    cx, cy = int(w * g.uniform(0.4, 0.6)), int(h * g.uniform(0.4, 0.6))
    ax_, ay_ = max(2, int(w * g.uniform(0.12, 0.2))), max(2, int(h * g.uniform(0.12, 0.2)))
    angle = float(g.uniform(0, 180))
    color = tuple(int(c) for c in g.integers(150, 256, 3))
    cv2.ellipse(frame, (cx, cy), (ax_, ay_), angle, 0, 360, color, -1)
    cv2.ellipse(mask, (cx, cy), (ax_, ay_), angle, 0, 360, 1, -1)
    if return_mask:
        return frame, mask.astype(bool)
    return frame


def lite_or_seeded(preset: str = "sharp", verbose: bool = True):
    """The shipped SiamMask-Lite network, or the book's seeded checkpoint without the weights.

    The chapters use two networks. The **seeded checkpoint**
    (``fixtures/siammask_sharp_seed1.f16.pth`` of the reference fixtures) has the released
    ResNet-50 layout with random weights: right for shapes and for exactness against the
    released implementation, but its masks follow no object. **SiamMask-Lite**
    (``Tracker.from_pretrained("lite")``'s weights, trained by this project) is used where
    the point is what the tracker does on a real object. When this build has no lite weights
    (:func:`~siammask_edu.tracker.pretrained_path` raises ``FileNotFoundError``) the seeded
    checkpoint stands in, and a line says so, so that a chapter still runs.

    Args:
        preset: model preset for the seeded fallback (``"sharp"``, or ``"base"`` to drop the
            refinement weights silently).
        verbose: print which network was loaded.

    Returns:
        ``(model, trained)``: a :class:`~siammask_edu.models.SiamMask` in eval mode on the
        CPU (fp32), and ``True`` for SiamMask-Lite, ``False`` for the seeded fallback.

    Raises:
        FileNotFoundError: neither the lite weights nor the reference fixtures are present.

    See book/07_online_tracker.py.
    """
    import warnings
    from importlib import resources

    from .checkpoint import load_checkpoint, load_released_checkpoint
    from .paths import reference_root
    from .tracker import pretrained_path

    try:
        shipped = pretrained_path("lite")
    except FileNotFoundError as exc:
        path = reference_root() / "fixtures" / "siammask_sharp_seed1.f16.pth"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # preset "base" drops the refinement weights
            model = load_released_checkpoint(path, preset=preset)
        if verbose:
            print(f"SiamMask-Lite weights absent ({exc}).\nUsing the seeded checkpoint "
                  f"{path.name} ({model.config.name}, random weights): the outputs follow "
                  "no object and the checks on them are skipped.")
        return model.eval(), False
    with resources.as_file(shipped) as path:
        model = load_checkpoint(path)
    if verbose:
        print(f"SiamMask-Lite: shipped weights {Path(path).name} ({model.config.name}, "
              f"{model.config.backbone}, refinement: {model.refine is not None})")
    return model.eval(), True


# -- a checkout without ../shared: the book says what it skips, the tests skip or fail ------

REQUIRE_DATA_ENV = "SIAMMASK_EDU_REQUIRE_DATA"
DATA_GET_DAVIS = "siammask-edu data get davis2016"
_FIXTURES_HOW = ("recorded by running the unmodified released SiamMask (foolwood/SiamMask) on a "
                 "seeded checkpoint, as shared/reference/fixtures/README.md describes")


def data_required() -> bool:
    """True when ``$SIAMMASK_EDU_REQUIRE_DATA`` is set to a value other than ``0``/empty:
    every test that would skip for missing data or fixtures fails instead (``.ci/run`` sets
    it, so that CI cannot pass by skipping what it is meant to prove)."""
    return os.environ.get(REQUIRE_DATA_ENV, "0") not in ("", "0", "false", "False")


def skip_missing_data(reason: str) -> None:
    """Skip the current test because a dataset or the reference fixtures are absent — or,
    under ``SIAMMASK_EDU_REQUIRE_DATA=1``, fail it with the same reason.

    Every data- or fixture-dependent test skips through this function, so one switch turns
    all of them into failures. Call it inside a test or a fixture; it never returns.
    """
    import pytest

    __tracebackhide__ = True  # pytest reports the test's line, not this one
    if data_required():
        pytest.fail(f"{reason} (${REQUIRE_DATA_ENV} is set: missing data is a failure)",
                    pytrace=False)
    pytest.skip(f"missing data: {reason}")


def skipped_reference_check(proves: str, made: str = _FIXTURES_HOW) -> None:
    """Print the one line a chapter shows instead of a check against the released
    implementation's recorded outputs, when the reference fixtures are absent.

    Args:
        proves: what the check proves, e.g. ``"our score and box heads give the released
            network's numbers on the same crops"``.
        made: how the fixtures it needs were made (default: the released SiamMask's
            recorded runs).
    """
    print(f"[skipped: no reference fixtures here] This check proves that {proves}. "
          f"CI runs it; the fixtures are {made}.")


def missing_data_note(dataset: str, instead: str) -> None:
    """Print the one line a chapter shows when a dataset is absent and it continues without.

    Args:
        dataset: ``"davis"`` or ``"vot"``.
        instead: what the chapter does instead (``"using the shipped synthetic_ellipse
            sample"``, ``"skipping the table of VOT numbers"``).
    """
    if dataset == "davis":
        print(f"[DAVIS-2016 is not in the data root] {instead}; "
              f"`{DATA_GET_DAVIS}` downloads it.")
    elif dataset == "vot":
        print(f"[VOT sequences are not in the data root] {instead}; VOT2016 comes from "
              "https://www.votchallenge.net (README, section Data).")
    else:
        raise ValueError(f"dataset must be 'davis' or 'vot', got {dataset!r}")


def released_layout_network(preset: str = "sharp", verbose: bool = True):
    """The book's seeded checkpoint in the released layout, or a fresh one without fixtures.

    With the reference fixtures this is ``fixtures/siammask_sharp_seed1.f16.pth`` (random
    weights the released implementation's recorded outputs were computed with); without
    them, the same architecture initialised with seed 1 by :func:`tiny_model`: every shape
    and parameter count is the same, only the (equally meaningless) weights differ, so the
    chapters' checks against the recorded outputs are what is skipped.

    Args:
        preset: ``"sharp"``, or ``"base"`` (the sharp file without its refinement weights;
            the loader's warning about the dropped tensors is let through).
        verbose: print a line when the fresh network stands in.

    Returns:
        ``(model, recorded)``: a :class:`~siammask_edu.models.SiamMask` in eval mode, and
        ``True`` when it holds the weights the fixtures were recorded with.
    """
    from .checkpoint import load_released_checkpoint
    from .paths import fixtures_dir, have_fixtures

    if have_fixtures("siammask_sharp_seed1.f16.pth"):
        path = fixtures_dir() / "siammask_sharp_seed1.f16.pth"
        return load_released_checkpoint(path, preset=preset).eval(), True
    model = tiny_model(seed=1, preset=preset)
    _calibrate_batchnorm(model)
    if verbose:
        print(f"[no reference fixtures here] the seeded checkpoint is absent: a freshly "
              f"initialised {preset} network (same layout and shapes, random weights) "
              "stands in.")
    return model, False


def _calibrate_batchnorm(model) -> None:
    """Set every BatchNorm's running statistics from two synthetic crops (batch statistics).

    A fresh network keeps mean 0 / variance 1 in eval mode while its input is raw 0..255
    BGR: activations then grow through the 50 ResNet layers to values in the hundreds, where
    float32 summation order alone moves outputs by more than the book's tolerances. The
    seeded checkpoint had its statistics calibrated on real frames for the same reason
    (fixtures README); here synthetic frames stand in.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    frames = [synthetic_frame(255, 255, seed=s) for s in range(2)]
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()  # (2, 3, 255, 255)
    z = x[:, :, 64:191, 64:191].contiguous()  # (2, 3, 127, 127), the centre
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calls below
    model.train()
    with torch.no_grad():
        model.track(x, model.template(z))
    for m in bns:
        m.momentum = 0.1
    model.eval()


@dataclass(frozen=True)
class BookSequence:
    """Frames and masks a chapter reads: DAVIS, or the shipped synthetic sample.

    Attributes:
        name: ``"car-shadow"`` (or the DAVIS name asked for) or ``"synthetic_ellipse"``.
        davis: ``True`` for the DAVIS sequence.
        frames: list of np.ndarray[H, W, 3] uint8, **BGR** (what the network eats).
        masks: list of np.ndarray[H, W] bool, the object's pixels (DAVIS annotation > 0,
            or the synthetic sequence's exact masks).
        box: ``(x, y, w, h)`` int, ``cv2.boundingRect`` of the first mask (the released
            DAVIS initialisation).
        frame_paths: the DAVIS JPEG files the frames were read from (``None`` for the
            synthetic sample, which is generated in memory).
    """

    name: str
    davis: bool
    frames: list
    masks: list
    box: tuple[int, int, int, int]
    frame_paths: list | None = None


def book_sequence(name: str = "car-shadow", n_frames: int | None = None,
                  verbose: bool = True) -> BookSequence:
    """A DAVIS-2016 480p sequence when it is in the data root, else ``synthetic_ellipse``.

    The fallback is the shipped sample's own recipe (``data_samples/synthetic_ellipse``:
    30 frames, 240x180, seed 0) generated in memory by
    :func:`~siammask_edu.data.make_synthetic_sequence`, so that its masks are exact (the
    shipped JPEG frames differ from these by compression noise only). Without DAVIS a line
    says so and gives the download command.

    Args:
        name: the DAVIS sequence.
        n_frames: read only the first ``n_frames`` (``None``: all).
        verbose: print the line about the fallback.
    """
    from . import data as sdata
    from .paths import davis_sequence, have_davis

    if have_davis(name):
        frames_dir, annos_dir = davis_sequence(name)
        frame_paths = sorted(frames_dir.glob("*.jpg"))[:n_frames]
        frames = [cv2.imread(str(p)) for p in frame_paths]
        masks = [cv2.imread(str(annos_dir / (p.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 0
                 for p in frame_paths]
        davis = True
    else:
        if verbose:
            missing_data_note("davis", f"the shipped sample synthetic_ellipse stands in for "
                              f"`{name}`")
        seq = sdata.make_synthetic_sequence(n_frames=30, size=(180, 240), seed=0)
        frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in seq.frames[:n_frames]]
        masks = list(seq.masks[:n_frames])
        name, davis, frame_paths = "synthetic_ellipse", False, None
    box = tuple(int(v) for v in cv2.boundingRect(masks[0].astype(np.uint8)))
    return BookSequence(name, davis, frames, masks, box, frame_paths)


__all__ = [
    "DATA_GET_DAVIS",
    "REQUIRE_DATA_ENV",
    "BookSequence",
    "Comparison",
    "book_sequence",
    "compare",
    "data_required",
    "lite_or_seeded",
    "missing_data_note",
    "random_boxes",
    "released_layout_network",
    "skip_missing_data",
    "skipped_reference_check",
    "synthetic_frame",
    "tiny_model",
]
