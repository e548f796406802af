"""Inference copies of a SiamMask network: BatchNorm folded into the preceding convolutions.

In eval mode a ``BatchNorm2d`` after a convolution is an affine map per output channel,
``y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta``; it is folded into the conv as
``W' = W * s`` and ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``
(computed in float64, stored in the model's dtype). The folded network differs from the
original by float rounding only (about 1e-6 relative on the backbone features of the
sharp model), but a tracker's state is more sensitive than the features: see
:func:`inference_model` for where folding is exact enough. The copy may also be laid out
``channels_last`` (NHWC), which the oneDNN convolutions of PyTorch's CPU build prefer.

See book/11_speed.py.
"""

from __future__ import annotations

import copy
import itertools
import weakref

import torch
from torch import nn

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    s = bn.weight.detach().double() / (bn.running_var.double() + bn.eps).sqrt()
    w = conv.weight.detach().double() * s.view(-1, *([1] * (conv.weight.dim() - 1)))
    b = bn.bias.detach().double() - bn.running_mean.double() * s
    if conv.bias is not None:
        b = b + conv.bias.detach().double() * s
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(w.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(b.to(dtype), requires_grad=False)


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold every ``Conv2d -> BatchNorm2d`` pair of ``model`` into the convolution.

    Pairs are found structurally: consecutive children of an ``nn.Sequential`` and sibling
    attributes named ``convX``/``bnX`` (``conv``/``bn``), the layout of every SiamMask
    module (ResNet bottlenecks, adjust layer, heads, EfficientNet-Lite ``ConvBN``). The
    folded BatchNorm is replaced by ``nn.Identity``.

    Args:
        model: any module; it must be in eval mode semantics (running statistics are used).
        inplace: modify ``model`` itself instead of a deep copy.

    Returns:
        The folded module (eval mode, no gradients).

    Raises:
        ValueError: for a module in training mode (folding would change its behaviour).

    See book/11_speed.py.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (call model.eval())")
    m = model if inplace else copy.deepcopy(model)
    for mod in list(m.modules()):
        children = list(mod._modules.items())
        if isinstance(mod, nn.Sequential):
            for (_, a), (n2, b) in itertools.pairwise(children):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    _fold_pair(a, b)
                    mod._modules[n2] = nn.Identity()
            continue
        for name, c in children:
            if isinstance(c, nn.Conv2d) and name.startswith("conv"):
                bn_name = "bn" + name[4:]
                bn = mod._modules.get(bn_name)
                if isinstance(bn, nn.BatchNorm2d):
                    _fold_pair(c, bn)
                    mod._modules[bn_name] = nn.Identity()
    return m.eval().requires_grad_(False)


def _key(model: nn.Module, device) -> tuple:
    return (str(device),) + tuple((id(t), t._version, t.device.type)
                                  for t in model.state_dict(keep_vars=True).values())


SCOPES = ("heads", "all")


def inference_model(model: nn.Module, device="cpu", scope: str = "heads",
                    channels_last: bool = False) -> nn.Module:
    """The folded inference copy of ``model`` on ``device``, cached per model.

    ``scope="heads"`` folds only the BatchNorms of the depth-wise heads (exact enough, but
    they are a negligible share of the time); ``"all"`` also folds the backbone and the
    adjust layer (``Tracker(fast="fold_all")``). Measured on
    the seeded random sharp checkpoint (car-shadow, teacher forced): heads only moves the
    state by <= 3e-4 px; folding the backbone (or running it NHWC) by up to 9e-3 px, beyond
    the 1e-3 px the equivalence tests allow, so it is opt-in (``Tracker(fast="fold_all")``).

    Trackers sharing one model share one copy. The cache entry is rebuilt when any
    parameter or buffer of ``model`` changes in place (its version counter moves) or is
    replaced, so a model being trained is never served stale weights.

    Args:
        model: a :class:`~siammask_edu.models.SiamMask` (any ``nn.Module``).
        device: torch device of the copy.
        scope: ``"heads"`` or ``"all"`` (see above).
        channels_last: lay out the 4-D weights NHWC (convolutions then run NHWC on CPU).

    Returns:
        nn.Module: a deep copy in eval mode; ``model`` itself is not changed.

    Raises:
        ValueError: for an unknown ``scope``.

    See book/11_speed.py.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    key = _key(model, device) + (scope, channels_last)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    was_training = model.training
    model.eval()
    if scope == "all":
        fast = fold_batchnorm(model).to(device)
    else:
        fast = copy.deepcopy(model).eval().requires_grad_(False).to(device)
        for name in ("score_head", "box_head", "mask_head"):
            if getattr(fast, name, None) is not None:
                fold_batchnorm(getattr(fast, name), inplace=True)
    if was_training:
        model.train()
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    _CACHE[model] = (key, fast)
    return fast


__all__ = ["SCOPES", "fold_batchnorm", "inference_model"]
