"""Loading released SiamMask checkpoints (official and pysot key layouts) and our own.

Everything is read with ``torch.load(..., weights_only=True)``: a checkpoint can never run
code. Released layouts (``released-implementation.md`` §3):

=============================  =====================  ==================
official (foolwood/SiamMask)   pysot                  siammask-edu
=============================  =====================  ==================
``features.features.``         ``backbone.``          ``backbone.``
``features.downsample.``       ``neck.downsample.``   ``neck.`` (conv/bn)
``  downsample.0.`` / ``.1.``  same                   ``conv.`` / ``bn.``
``rpn_model.cls.``             ``rpn_head.cls.``      ``score_head.``
``rpn_model.loc.``             ``rpn_head.loc.``      ``box_head.``
``mask_model.mask.``           ``mask_head.``         ``mask_head.``
``refine_model.``              ``refine_head.``       ``refine.``
=============================  =====================  ==================

See book/01_siamese_tracking.py.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from .config import ModelConfig
from .models.siammask import SiamMask, build_model

FORMAT_TAG = "siammask_edu/checkpoint/v1"

# (prefix in the file, prefix in our model), tried in order; the first match wins.
_OFFICIAL = [
    ("features.features.", "backbone."),
    ("features.downsample.downsample.0.", "neck.conv."),
    ("features.downsample.downsample.1.", "neck.bn."),
    ("rpn_model.cls.", "score_head."),
    ("rpn_model.loc.", "box_head."),
    ("mask_model.mask.", "mask_head."),
    ("refine_model.", "refine."),
]
_PYSOT = [
    ("backbone.", "backbone."),
    ("neck.downsample.downsample.0.", "neck.conv."),
    ("neck.downsample.downsample.1.", "neck.bn."),
    ("rpn_head.cls.", "score_head."),
    ("rpn_head.loc.", "box_head."),
    ("mask_head.", "mask_head."),
    ("refine_head.", "refine."),
]


class CheckpointError(ValueError):
    """A file that is not a usable SiamMask checkpoint (the message says why)."""


def _describe_bad_file(path: Path, head: bytes, size: int) -> str:
    lower = head.lstrip().lower()
    if size == 0:
        return "it is empty (0 bytes)"
    if lower.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return ("it is an HTML/XML page, not a checkpoint (a download link that returned a "
                "web page, e.g. a sign-in or quota page)")
    if lower.startswith(b"{") or lower.startswith(b"["):
        return "it is a JSON/text file, not a checkpoint"
    if head.startswith(b"PK\x03\x04"):
        return ("it is a zip archive (torch's format) that cannot be read: truncated or "
                f"corrupt ({size} bytes; a complete SiamMask checkpoint is ~70-86 MB in fp32)")
    if head[:1] == b"\x80":
        return f"it is a legacy pickle that cannot be read: truncated or corrupt ({size} bytes)"
    return f"its first bytes {head[:16]!r} are not a torch checkpoint"


def read_state_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """``torch.load`` a checkpoint with ``weights_only=True`` and clear errors.

    Raises:
        FileNotFoundError: if ``path`` does not exist (the path is in the message).
        CheckpointError: for an HTML page, a truncated download, or a pickle holding
            objects other than tensors and plain containers.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(64)
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
            msg = str(exc).splitlines()[0] if str(exc) else ""
            if "weights_only" in str(exc) or "Unsupported" in str(exc):
                raise CheckpointError(
                    f"{p} holds pickled Python objects besides tensors; siammask-edu only loads "
                    f"checkpoints with weights_only=True ({msg})"
                ) from None
        raise CheckpointError(f"cannot read {p}: {_describe_bad_file(p, head, size)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, io.UnsupportedOperation):
        raise CheckpointError(f"cannot read {p}: {_describe_bad_file(p, head, size)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p} holds a {type(obj).__name__}, not a dict of tensors")
    return obj


def _unwrap(obj: dict, path) -> tuple[dict[str, Tensor], dict | None]:
    meta = None
    if obj.get("format") == FORMAT_TAG:
        meta = obj
        obj = obj["state_dict"]
    elif "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    state = {}
    for k, v in obj.items():
        if not isinstance(v, Tensor):
            raise CheckpointError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        state[k.removeprefix("module.")] = v
    return state, meta


def detect_layout(keys) -> str:
    """``"official"``, ``"pysot"`` or ``"ours"`` from the key names.

    Raises:
        CheckpointError: if the keys belong to none of them.
    """
    keys = list(keys)
    if any(k.startswith("features.features.") for k in keys):
        return "official"
    if any(k.startswith(("rpn_head.", "refine_head.", "neck.downsample.")) for k in keys):
        return "pysot"
    if any(k.startswith(("score_head.", "neck.conv.")) for k in keys):
        return "ours"
    sample = ", ".join(sorted(keys)[:5])
    raise CheckpointError(
        f"unrecognised key layout (first keys: {sample}); expected the official "
        "'features.features.*', pysot 'backbone.*'/'rpn_head.*' or siammask-edu names"
    )


def map_released_keys(state: dict[str, Tensor], layout: str) -> dict[str, Tensor]:
    """Rename released keys to ours. Unknown keys keep their name (reported as unexpected)."""
    if layout == "ours":
        return dict(state)
    table = _OFFICIAL if layout == "official" else _PYSOT
    out = {}
    for k, v in state.items():
        for src, dst in table:
            if k.startswith(src):
                out[dst + k[len(src):]] = v
                break
        else:
            out[k] = v
    return out


def _infer_preset(state: dict[str, Tensor]) -> str:
    return "sharp" if any(k.startswith("refine.") for k in state) else "base"


def _load_into(model: SiamMask, state: dict[str, Tensor], path, layout: str, strict: bool):
    own = model.state_dict()
    state = dict(state)
    if model.refine is None and any(k.startswith("refine.") for k in state):
        # A sharp file holds the complete base network (the mask head is kept even though
        # refinement replaces it), so loading it as "base" is legitimate: drop refine.*.
        warnings.warn(
            f"{path}: ignoring {sum(k.startswith('refine.') for k in state)} refine_model.* "
            f"tensors, the {model.config.name!r} model has no refinement module",
            stacklevel=3,
        )
        state = {k: v for k, v in state.items() if not k.startswith("refine.")}
    # Files written by older PyTorch lack BatchNorm's num_batches_tracked; it is unused
    # in eval mode, so take the model's own value rather than failing.
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if strict and (missing or unexpected or mismatched):
        lines = [f"checkpoint {path} ({layout} layout) does not fit the "
                 f"{model.config.name!r} model:"]
        if missing:
            refine_missing = [k for k in missing if k.startswith("refine.")]
            if refine_missing and len(refine_missing) == len(missing):
                lines.append(
                    f"  refine_model.* is missing ({len(refine_missing)} keys): this looks like "
                    "a base-model checkpoint; load it with preset='base'"
                )
            else:
                lines.append(f"  missing keys ({len(missing)}): {', '.join(missing[:12])}"
                             + (" ..." if len(missing) > 12 else ""))
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected[:12])}"
                         + (" ..." if len(unexpected) > 12 else ""))
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): " + "; ".join(mismatched[:8]))
        raise CheckpointError("\n".join(lines))
    cast = {}
    for k, v in state.items():
        if k in own:
            cast[k] = v.to(own[k].dtype) if v.is_floating_point() else v.to(own[k].dtype)
    model.load_state_dict(cast, strict=False)
    return model


def load_released_checkpoint(
    path: str | os.PathLike,
    preset: str | ModelConfig | None = None,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
) -> SiamMask:
    """Load a released SiamMask checkpoint into a new model, in eval mode.

    Accepts SiamMask_DAVIS.pth / SiamMask_VOT.pth / SiamMask_VOT_LD.pth (sharp), base-model
    checkpoints, the same weights in pysot's key layout, and our own checkpoints; with or
    without a ``state_dict`` wrapper and ``module.`` prefixes. fp16 files are cast to fp32.

    Args:
        path: the ``.pth`` file.
        preset: ``"sharp"``, ``"base"`` or a :class:`ModelConfig`; default: ``sharp`` if
            the file has refinement weights, else ``base`` (our own files carry theirs).
        strict: fail on missing/unexpected keys and shape mismatches (default).
        map_location: device for the loaded tensors.

    Returns:
        :class:`~siammask_edu.models.SiamMask` in eval mode.

    Raises:
        FileNotFoundError: if the file does not exist.
        CheckpointError (a ``ValueError``): not a checkpoint (HTML page, truncated file),
            unknown key layout, or a strict mismatch (the message names the keys and both
            shapes; a base file given to ``sharp`` says so and suggests ``base``).

    See book/01_siamese_tracking.py.
    """
    raw = read_state_file(path, map_location)
    state, meta = _unwrap(raw, path)
    layout = detect_layout(state)
    state = map_released_keys(state, layout)
    if preset is None:
        if meta is not None:
            preset = ModelConfig.from_dict(meta["model_config"])
        else:
            preset = _infer_preset(state)
    model = build_model(preset)
    _load_into(model, state, path, layout, strict)
    return model.to(map_location).eval()


def save_checkpoint(model: SiamMask, path: str | os.PathLike, extra: dict | None = None,
                    half: bool = False) -> Path:
    """Write our checkpoint: weights plus the model preset and settings, atomically.

    The file is ``{"format", "model_config", "state_dict", "extra"}``; ``extra`` may hold
    plain Python values (numbers, strings, lists, dicts) and tensors, nothing else, so that
    :func:`load_checkpoint` reads it with ``weights_only=True``.

    Args:
        half: store floating tensors as fp16 (halves the size; cast back on load).

    Returns:
        The path written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu()
             for k, v in model.state_dict().items()}
    payload = {"format": FORMAT_TAG, "model_config": model.config.to_dict(),
               "state_dict": state, "extra": extra or {}}
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> SiamMask:
    """Load a checkpoint written by :func:`save_checkpoint` (or any released one).

    Raises:
        FileNotFoundError, CheckpointError: as :func:`load_released_checkpoint`.
    """
    return load_released_checkpoint(path, None, True, map_location)
