"""Arithmetic precision of the tracker's network calls: ``"fp32"`` (exact), ``"bf16"``,
``"fp16"`` (CUDA) -- validation, the autocast context, and outputs back to float32.

Used by :class:`~siammask_edu.tracker.Tracker`, :class:`~siammask_edu.multi.MultiTracker`
and :mod:`siammask_edu.bench`. See book/11_speed.py.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device) -> str:
    """Validate a tracker ``precision`` for ``device``; returns it unchanged.

    ``"fp32"`` runs anywhere; ``"bf16"`` on a CPU or a CUDA device; ``"fp16"`` on a CUDA
    device only (float16 autocast on a CPU is slow and untested here: use ``"bf16"``).

    Raises:
        ValueError: a value not in :data:`PRECISIONS`, or a precision the device type
            does not support (the message names the alternative).

    See book/11_speed.py.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, "
                         f"got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA device, got device {kind!r}; use "
                         "precision='bf16' on a CPU (or 'fp32', the exact path)")
    if precision == "bf16" and kind not in ("cpu", "cuda"):
        raise ValueError(f"precision='bf16' runs on a CPU or a CUDA device, got device "
                         f"{kind!r}; use precision='fp32'")
    return precision


def autocast_for(precision: str, device):
    """The context the network calls of a tracker run in: :func:`contextlib.nullcontext`
    for ``"fp32"`` (no autocast: the exact path), else ``torch.autocast(device_type,
    dtype=bfloat16 | float16)``. ``precision`` is assumed valid (:func:`check_precision`).

    See book/11_speed.py.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_AUTOCAST_DTYPES[precision])


def to_float32(obj):
    """Every floating tensor of a network output back to float32: a Tensor, a list / tuple /
    dict of them, or a dataclass (:class:`~siammask_edu.models.siammask.Exemplar`,
    :class:`~siammask_edu.models.siammask.SearchOutputs`; a new instance, same fields).
    Float32 tensors are returned as they are (no copy), so fp32 outputs are untouched.

    See book/11_speed.py.
    """
    if isinstance(obj, torch.Tensor):
        return obj.float() if obj.is_floating_point() and obj.dtype != torch.float32 else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_float32(v) for v in obj)
    if isinstance(obj, dict):
        return {k: to_float32(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: to_float32(getattr(obj, f.name))
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


__all__ = ["PRECISIONS", "autocast_for", "check_precision", "to_float32"]
