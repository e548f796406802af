"""Loading released SiamMask checkpoints (official and pysot key layouts) and our own.

Everything is read with ``torch.load(..., weights_only=True)``: a checkpoint can never run
code. A file that also holds pickled Python objects (an old training checkpoint with an
``argparse.Namespace``, a whole pickled model) is refused with an
:class:`UnsafeCheckpointError` naming what it holds; if you trust where it comes from,
:func:`convert_checkpoint` with ``trust=True`` (``siammask-edu convert-checkpoint SRC DST
--trust``) rewrites it once as a weights-only file: the one place, off by default, where
this package unpickles objects. Released layouts (``released-implementation.md`` §3):

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
import re
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


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that holds pickled Python objects besides tensors: refused, since
    loading it could run code. ``found`` lists the objects' ``module.name`` (as far as
    they can be read without loading); :func:`convert_checkpoint` with ``trust=True``
    converts a file you trust."""

    def __init__(self, message: str, found: list[str]):
        super().__init__(message)
        self.found = list(found)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(text: str) -> str:
    """One line without terminal escape codes (torch colours parts of its messages)."""
    return " ".join(_ANSI.sub("", str(text)).split())


def _unsafe_globals(path: Path, exc: BaseException) -> list[str]:
    """The ``module.name`` of the objects pickled in ``path``, read without loading them."""
    found: list[str] = []
    get = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch>=2.5
    if get is not None:
        try:
            found = list(get(os.fspath(path)))
        except Exception:  # noqa: BLE001  (a legacy, non-zip file: use torch's message)
            found = []
    if not found:
        found = re.findall(r"GLOBAL ([\w.]+)", _plain(exc))
    return sorted(dict.fromkeys(found))


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
        UnsafeCheckpointError: a pickle holding objects other than tensors and plain
            containers (the message names them and the way to convert a trusted file).
        CheckpointError: for an HTML page, a truncated download.
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
            if "weights_only" in str(exc) or "Unsupported" in str(exc):
                found = _unsafe_globals(p, exc)
                what = (f"pickled Python objects besides tensors: {', '.join(found[:8])}"
                        + (f" and {len(found) - 8} more" if len(found) > 8 else "")
                        if found else "pickled Python objects besides tensors")
                raise UnsafeCheckpointError(
                    f"{p} holds {what}. siammask-edu loads checkpoints with "
                    "weights_only=True, so that a file can never run code, and refuses this "
                    "one. If you trust where it comes from, convert it once into a "
                    f"weights-only checkpoint: siammask-edu convert-checkpoint {p} OUT.pth "
                    "--trust (Python: siammask_edu.checkpoint.convert_checkpoint(src, dst, "
                    "trust=True)), then load OUT.pth.", found) from None
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


def _names(keys: list[str], n: int = 12) -> str:
    return ", ".join(keys[:n]) + (f" ... ({len(keys) - n} more)" if len(keys) > n else "")


def _anchor_mismatch(model: SiamMask, state: dict, own: dict, wrong: list[str]) -> str:
    """``"anchors: ..."`` when the score/box heads' output channels say the file was trained
    with another number of anchors per position (2k score and 4k box channels), else ``""``."""
    k = model.config.anchor_num
    for key in wrong:
        head = key.split(".", 1)[0]
        if head not in ("score_head", "box_head") or not key.endswith((".weight", ".bias")):
            continue
        a, b = tuple(state[key].shape), tuple(own[key].shape)
        if len(a) != len(b) or a[1:] != b[1:] or not b or b[0] % k:
            continue
        per = b[0] // k
        if a[0] % per == 0:
            return (f"anchors: the checkpoint has {a[0] // per} anchors per position, the "
                    f"{model.config.name!r} model {k} ({key}: {a[0]} = {per} x {a[0] // per} "
                    f"channels vs {b[0]} = {per} x {k}); use a ModelConfig with "
                    f"anchor_num={a[0] // per} and tracker ratios x scales giving as many")
    return ""


def _load_into(model: SiamMask, state: dict[str, Tensor], path, layout: str, strict: bool):
    own = model.state_dict()
    state = dict(state)
    if model.refine is None and any(k.startswith("refine.") for k in state):
        # A sharp file holds the complete base network (the mask head is kept even though
        # refinement replaces it), so loading it as "base" is legitimate: drop refine.*.
        warnings.warn(
            f"{path}: ignoring {sum(k.startswith('refine.') for k in state)} refine_model.* "
            f"tensors, the {model.config.name!r} model has no refinement module",
            stacklevel=4,
        )
        state = {k: v for k, v in state.items() if not k.startswith("refine.")}
    # Files written by older PyTorch lack BatchNorm's num_batches_tracked; it is unused
    # in eval mode, so take the model's own value rather than failing.
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in wrong]
    anchors = _anchor_mismatch(model, state, own, wrong)
    refine_own = [k for k in own if k.startswith("refine.")
                  and not k.endswith("num_batches_tracked")]
    refine_missing = [k for k in missing if k.startswith("refine.")]
    other_missing = [k for k in missing if not k.startswith("refine.")]
    if strict and (missing or unexpected or mismatched):
        lines = [f"checkpoint {path} ({layout} layout) does not fit the "
                 f"{model.config.name!r} model:"]
        if anchors:
            lines.append("  " + anchors)
        if refine_missing and len(refine_missing) == len(refine_own) and not other_missing:
            lines.append(
                f"  refine_model.* is missing ({len(refine_missing)} of {len(refine_own)} "
                "keys): this looks like a base-model checkpoint; load it with preset='base'"
            )
        elif refine_missing:
            lines.append(
                f"  refine_model.* is incomplete: {len(refine_missing)} of {len(refine_own)} "
                f"keys missing ({_names(refine_missing)}): a damaged or partly saved "
                "refinement module (a base-model checkpoint has none of them)"
            )
        if other_missing:
            lines.append(f"  missing keys ({len(other_missing)}): {_names(other_missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {_names(unexpected)}")
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): " + "; ".join(mismatched[:8])
                         + (" ..." if len(mismatched) > 8 else ""))
        raise CheckpointError("\n".join(lines))
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(own)} model tensors are not in the file and "
                         f"keep their initial (untrained) values: {_names(missing)}")
        if mismatched:
            parts.append(f"{len(mismatched)} tensors have another shape and were skipped"
                         + (f" ({anchors})" if anchors else "") + ": "
                         + "; ".join(mismatched[:8]) + (" ..." if len(mismatched) > 8 else ""))
        if unexpected:
            parts.append(f"{len(unexpected)} tensors of the file were ignored: "
                         f"{_names(unexpected)}")
        warnings.warn(f"{path} loaded with strict=False into the {model.config.name!r} "
                      f"model ({layout} layout): " + "; ".join(parts), stacklevel=4)
    for k in wrong:
        state.pop(k)
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
            ``strict=False`` loads what fits and warns, naming the missing tensors (they
            keep their untrained values), the skipped shape mismatches and ignored keys.
        map_location: device for the loaded tensors.

    Returns:
        :class:`~siammask_edu.models.SiamMask` in eval mode.

    Raises:
        FileNotFoundError: if the file does not exist.
        CheckpointError (a ``ValueError``): not a checkpoint (HTML page, truncated file),
            unknown key layout, or a strict mismatch (the message names the keys and both
            shapes; a base file given to ``sharp`` says so and suggests ``base``, a partial
            refinement module says how many of its keys are missing, another number of
            anchors says ``anchors``).
        UnsafeCheckpointError (a ``CheckpointError``): the file holds pickled objects;
            see :func:`convert_checkpoint`.

    See book/01_siamese_tracking.py.
    """
    raw = read_state_file(path, map_location)
    state, meta = _unwrap(raw, path)
    model, _ = _model_from_state(state, meta, path, preset, strict)
    return model.to(map_location).eval()


def _model_from_state(state: dict[str, Tensor], meta: dict | None, path, preset, strict: bool
                      ) -> tuple[SiamMask, str]:
    layout = detect_layout(state)
    state = map_released_keys(state, layout)
    if preset is None:
        if meta is not None:
            preset = ModelConfig.from_dict(meta["model_config"])
        else:
            preset = _infer_preset(state)
    model = build_model(preset)
    _load_into(model, state, path, layout, strict)
    return model, layout


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


# -- the one explicit way to read a trusted file that holds pickled objects -----------------


def _load_trusted(path: Path):
    """Unpickle ``path`` with objects. The only ``weights_only=False`` in siammask-edu,
    reached only through :func:`convert_checkpoint` with ``trust=True``."""
    return torch.load(path, map_location="cpu", weights_only=False)


def _tensors_of(obj, path) -> tuple[dict[str, Tensor], list[str]]:
    """The weights in an unpickled object (a state dict, a wrapper dict, a whole module)
    and the names of the top-level entries left out."""
    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict()), []
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__module__}.{type(obj).__name__}, "
                              "not a model, a state dict or a dict holding one")
    for key in ("state_dict", "model", "net"):
        inner = obj.get(key)
        if isinstance(inner, (dict, torch.nn.Module)):
            state, _ = _tensors_of(inner, path)
            return state, sorted(str(k) for k in obj if k != key)
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    return state, sorted(str(k) for k in obj if not isinstance(obj[k], Tensor))


def convert_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *, trust: bool = False,
                       preset: str | ModelConfig | None = None, overwrite: bool = False) -> dict:
    """Rewrite a checkpoint as a siammask-edu checkpoint that loads with ``weights_only=True``.

    Meant for an old, **trusted** training checkpoint that pickles Python objects beside
    its weights (an ``argparse.Namespace``, an optimizer, a whole model), which
    :func:`load_released_checkpoint` refuses. With ``trust=True`` (CLI:
    ``siammask-edu convert-checkpoint SRC DST --trust``) the file is unpickled with
    ``weights_only=False`` -- which runs whatever code the file names, so only for files
    whose origin you trust; this is the only place siammask-edu does so. The weights are
    then loaded strictly into the model (any key layout :func:`load_released_checkpoint`
    reads), and written with :func:`save_checkpoint` (fp16 if every float tensor of the
    file was fp16); everything else in the file is dropped and listed.

    Without ``trust`` a weights-only file is converted the same way (e.g. pysot names to
    ours, with the preset recorded), and a file with objects raises.

    Args:
        src: the checkpoint to convert.
        dst: the file to write (not ``src``).
        trust: allow unpickling objects (default ``False``).
        preset: model preset, as in :func:`load_released_checkpoint` (default: inferred).
        overwrite: replace an existing ``dst``.

    Returns:
        ``{"path", "layout", "preset", "tensors", "dropped", "trusted"}``: the path written,
        the source key layout, the model preset, the number of tensors, the top-level
        entries left out and whether objects were unpickled.

    Raises:
        UnsafeCheckpointError: ``src`` holds objects and ``trust`` is false.
        FileExistsError: ``dst`` exists and ``overwrite`` is false.
        FileNotFoundError, CheckpointError: as :func:`load_released_checkpoint`, or the
            trusted file cannot be unpickled here (e.g. it needs a module of its project).
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"checkpoint {src} does not exist")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"convert {src} into another file, not into itself")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; choose another name or pass overwrite=True "
                              "(CLI: --overwrite)")
    trusted = False
    meta = None
    try:
        state, meta = _unwrap(read_state_file(src), src)
        dropped: list[str] = []
    except UnsafeCheckpointError as exc:
        if not trust:
            found = ", ".join(exc.found) or "objects"
            raise UnsafeCheckpointError(
                f"{src} holds pickled Python objects besides tensors ({found}); converting "
                "it means unpickling them, which runs code the file names: pass --trust "
                "(Python: trust=True) only if you trust where the file comes from",
                exc.found) from None
        try:
            obj = _load_trusted(src)
        except Exception as err:  # noqa: BLE001  (unpickling can raise anything)
            raise CheckpointError(
                f"cannot unpickle {src} even with trust: {type(err).__name__}: "
                f"{_plain(err)} (a class of the project that wrote it may have to be "
                "importable)") from None
        trusted = True
        state, dropped = _tensors_of(obj, src)
        state = {k.removeprefix("module."): v for k, v in state.items()}
    floats = [v for v in state.values() if v.is_floating_point()]
    half = bool(floats) and all(v.dtype == torch.float16 for v in floats)
    model, layout = _model_from_state(state, meta, src, preset, strict=True)
    extra = {"converted_from": src.name, "source_layout": layout, "dropped": dropped}
    if meta is not None and isinstance(meta.get("extra"), dict):
        extra = {**meta["extra"], **extra}
    save_checkpoint(model, dst, extra=extra, half=half)
    return {"path": dst, "layout": layout, "preset": model.config.name, "tensors": len(state),
            "dropped": dropped, "trusted": trusted}


def add_convert_parser(subparsers):
    """Register ``siammask-edu convert-checkpoint SRC DST [--trust]``."""
    p = subparsers.add_parser(
        "convert-checkpoint", help="rewrite a trusted old checkpoint as a weights-only one",
        description="Rewrite a checkpoint as a siammask-edu checkpoint that loads with "
                    "weights_only=True. A file holding pickled Python objects (an old "
                    "training checkpoint) needs --trust: unpickling runs code named by the "
                    "file, so pass it only for a file whose origin you trust.")
    p.add_argument("src", help="the checkpoint to convert")
    p.add_argument("dst", help="the weights-only checkpoint to write")
    p.add_argument("--trust", action="store_true", default=False,
                   help="allow unpickling the Python objects in SRC, which runs code the file "
                        "names (default: off)")
    p.add_argument("--preset", default=None,
                   help="model preset: sharp, base, lite, ... (default: inferred from the file)")
    p.add_argument("--overwrite", action="store_true", default=False,
                   help="replace DST if it exists (default: off)")
    p.set_defaults(func=cmd_convert_checkpoint)
    return p


def cmd_convert_checkpoint(args) -> int:
    """``siammask-edu convert-checkpoint``: :func:`convert_checkpoint`."""
    info = convert_checkpoint(args.src, args.dst, trust=args.trust, preset=args.preset,
                              overwrite=args.overwrite)
    dropped = ", ".join(info["dropped"]) or "nothing"
    print(f"converted {args.src} -> {info['path']} ({info['layout']} layout, "
          f"{info['preset']} preset, {info['tensors']} tensors; dropped: {dropped}); it loads "
          "with weights_only=True")
    return 0
