"""Training SiamMask (base stage, then refine stage) on a CPU or GPU, resumable and reproducible.

The loop follows the released recipe (``released-implementation.md`` §5.5–§5.7) with the
paper's alternatives as presets:

* SGD, momentum 0.9, weight decay 1e-4, global gradient-norm clipping at 10; a step whose
  loss is non-finite or > 1e4 is skipped (or the run stops), naming the iteration and the
  loss component;
* schedules: ``paper`` (linear warm-up 1e-3 -> 5e-3 over 5 epochs, then log decay to 5e-4),
  ``released`` (geometric warm-up, log decay to 2.5e-3), ``lite`` (short warm-up, LR held
  at its peak until 60 %, then log decay), ``refine`` (log 1e-2 -> 2.5e-3), ``constant``;
* the backbone frozen, then selected blocks unfrozen at ``unfreeze_epoch`` with an LR
  multiplier (released: 0.1; the optimiser is rebuilt, as released); backbone BN frozen;
* two stages: ``base`` (255 searches, score + box + mask head, the mask head evaluated only
  at positive RoWs) then ``refine`` (143 searches, backbone and RPN frozen, mask branch +
  refinement trained on every positive RoW of the 3x3 grid);
* a checkpoint per epoch, every N iterations and every few minutes, holding weights,
  optimiser, RNG states and the step: resuming reproduces the uninterrupted run exactly
  (the data of step t depend only on (seed, t));
* CSV + JSON logs and a loss-curve PNG; optional bf16 autocast of the backbone on CPU.

:mod:`siammask_edu.distributed` runs the same loop with DDP. See book/09_training_lite.py.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import read_state_file, save_checkpoint
from .config import model_config
from .augment import Variety
from .datasets import PairConfig, PairDataset, PairSampler, build_sources, collate, describe
from .losses import LossWeights, loss_2b, loss_3b, mask_iou, mask_loss, upsample_mask_logits
from .models.siammask import SiamMask
from .targets import mask_patches, positive_rows


class NonFiniteLossError(RuntimeError):
    """Raised (policy ``stop``) when a loss component is NaN/Inf or too large.

    See book/09_training_lite.py.
    """


@dataclass(frozen=True)
class TrainConfig:
    """One training stage.

    Attributes:
        name: run name (folder under ``runs/``).
        stage: ``"base"`` (255 searches) or ``"refine"`` (143 searches, refinement only).
        model: :class:`ModelConfig` preset (``lite``, ``tiny``, ``base``, ...).
        init: ``"imagenet"`` (lite backbone), ``"random"``, ``"previous"`` (the preceding
            stage's final weights) or a checkpoint path.
        epochs, pairs_per_epoch, batch_size: ``steps = epochs * pairs_per_epoch // batch``.
        grad_accum: micro-batches per step (the batch is split; equals DDP over that many
            ranks).
        schedule, lr, lr_start, lr_end, warmup_epochs, hold_frac: learning-rate schedule
            (see :func:`lr_at`).
        backbone_lr_mult: LR multiplier of unfrozen backbone blocks (released 0.1).
        unfreeze_epoch, unfreeze: from this epoch, parameters whose names start with one of
            ``unfreeze`` become trainable (None: never).
        bn_policy: ``"frozen"`` (backbone BN in eval mode throughout, released) or
            ``"train_unfrozen"`` (pysot: BN of unfrozen blocks in train mode).
        loss: ``"released"`` (1 / 1.2 / 36, L1) or ``"paper"`` (1 / 1 / 32, smooth L1).
        clip_grad, max_loss, nonfinite: clipping norm; skip threshold; ``"skip"``/``"stop"``.
        bf16_backbone: run the backbone under ``torch.autocast(bfloat16)``.
        threads, num_workers, seed: CPU threads, DataLoader workers, base seed.
        data, source_probs, neg, gray, frame_range: training data (see
            :func:`siammask_edu.datasets.build_sources`).
        variety: recipe-v2 data augmentations, the keys of
            :class:`siammask_edu.augment.Variety` (``copy_paste``, ``distractor``,
            ``neg_same_class``, ``scale``, ``motion_blur``, ``occlusion``, ...); empty (the
            default) = the v1 recipe, pairs bit for bit unchanged.
        checkpoint_minutes, checkpoint_every, log_every: checkpoint/log cadence.

    See book/09_training_lite.py.
    """

    name: str = "tiny"
    stage: str = "base"
    model: str = "tiny"
    init: str = "random"
    epochs: int = 2
    pairs_per_epoch: int = 8
    batch_size: int = 4
    grad_accum: int = 1
    schedule: str = "paper"
    lr: float = 5e-3
    lr_start: float = 1e-3
    lr_end: float = 5e-4
    warmup_epochs: float = 5.0
    hold_frac: float = 0.6
    momentum: float = 0.9
    weight_decay: float = 1e-4
    backbone_lr_mult: float = 0.1
    unfreeze_epoch: int | None = None
    unfreeze: tuple[str, ...] = ()
    bn_policy: str = "frozen"
    loss: str = "released"
    clip_grad: float = 10.0
    max_loss: float = 1e4
    nonfinite: str = "skip"
    bf16_backbone: bool = False
    threads: int = 2
    num_workers: int = 0
    seed: int = 0
    data: tuple = ({"type": "davis", "sequences": ["bear", "boat"]},)
    source_probs: tuple[float, ...] | None = None
    neg: float = 0.2
    gray: float = 0.25
    variety: dict = field(default_factory=dict)
    checkpoint_minutes: float = 10.0
    checkpoint_every: int = 0
    log_every: int = 10

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.pairs_per_epoch // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def replace(self, **kw) -> "TrainConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"] = [dict(s) for s in self.data]
        d["variety"] = dict(self.variety)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        d = dict(d)
        for k in ("unfreeze", "source_probs", "data"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        d["variety"] = dict(d.get("variety") or {})
        Variety.from_dict(d["variety"])  # unknown keys fail when the config is read
        return cls(**d)

    # -- presets ------------------------------------------------------------------------
    @classmethod
    def tiny(cls, **kw) -> "TrainConfig":
        """Seconds on a CPU: tiny model, 2 DAVIS train sequences, batch 4, 2 x 2 steps,
        1 thread (small ops: a second thread only adds synchronisation)."""
        kw.setdefault("threads", 1)
        return cls(**kw)

    @classmethod
    def lite(cls, **kw) -> "TrainConfig":
        """SiamMask-Lite base stage on CPU: ImageNet EfficientNet-Lite0, DAVIS-2016 train
        (240p) + COCO-128, batch 16, 16 x 8000 pairs, ``lite`` schedule, blocks 9-10 of the
        backbone unfrozen at epoch 8 (x0.1 LR; unfreezing doubles the step time on CPU),
        bf16 backbone."""
        base = dict(
            name="lite", stage="base", model="lite", init="imagenet", epochs=16,
            pairs_per_epoch=8000, batch_size=16, schedule="lite", lr=5e-3, lr_start=1e-3,
            lr_end=5e-4, warmup_epochs=1.0, hold_frac=0.6, unfreeze_epoch=8,
            unfreeze=("backbone.blocks.9.", "backbone.blocks.10."), bf16_backbone=True,
            threads=2, num_workers=1,
            data=({"type": "davis", "resolution": "240p", "frame_range": 25},
                  {"type": "coco"}),
            source_probs=(0.65, 0.35), neg=0.2, gray=0.25, log_every=20,
        )
        base.update(kw)
        return cls(**base)

    @classmethod
    def lite_refine(cls, **kw) -> "TrainConfig":
        """Refine stage of SiamMask-Lite: 143 searches, refinement + mask branch only,
        released refine schedule (log 1e-2 -> 2.5e-3) over 5 x 3200 pairs (the 127x127
        decoding of ~5 RoWs per pair costs about as much as a base step)."""
        base = cls.lite().to_dict()
        base.update(stage="refine", init="previous", epochs=5, pairs_per_epoch=3200,
                    schedule="refine", lr=1e-2, lr_end=2.5e-3, unfreeze_epoch=None,
                    unfreeze=(), neg=0.0)
        base.update(kw)
        return cls.from_dict(base)


def lr_at(cfg: TrainConfig, epoch: float) -> float:
    """Learning rate at a (fractional) epoch.

    * ``paper``: linear ``lr_start -> lr`` over ``warmup_epochs`` (per epoch), then
      log-linear to ``lr_end`` at the last epoch (paper §3.3: 1e-3 -> 5e-3 in 5 epochs,
      then to 5e-4 in 15);
    * ``released``: ``lr_start * (lr/lr_start)^(e/warmup)`` during the warm-up (never
      reaching ``lr``), then ``logspace(lr, lr/2, epochs - warmup)`` (0.005 -> 0.0025);
    * ``lite``: per iteration, linear warm-up, held at ``lr`` until ``hold_frac`` of the
      run, then log-linear to ``lr_end``;
    * ``refine``: ``logspace(lr, lr_end, epochs)`` per epoch (released 0.01 -> 0.0025);
    * ``constant``: ``lr``.

    See book/09_training_lite.py.
    """
    n, w = cfg.epochs, cfg.warmup_epochs
    e = int(epoch)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "paper":
        if e < w:
            return cfg.lr_start + (cfg.lr - cfg.lr_start) * e / w
        rest = max(n - w - 1, 1)
        return cfg.lr * (cfg.lr_end / cfg.lr) ** (min(e - w, rest) / rest)
    if cfg.schedule == "released":
        if e < w:
            return cfg.lr_start * (cfg.lr / cfg.lr_start) ** (e / w)
        rest = max(n - w - 1, 1)
        return cfg.lr * 0.5 ** (min(e - w, rest) / rest)
    if cfg.schedule == "refine":
        return cfg.lr * (cfg.lr_end / cfg.lr) ** (min(e, n - 1) / max(n - 1, 1))
    if cfg.schedule == "lite":
        if epoch < w:
            return cfg.lr_start + (cfg.lr - cfg.lr_start) * epoch / w
        hold = cfg.hold_frac * n
        if epoch < hold:
            return cfg.lr
        return cfg.lr * (cfg.lr_end / cfg.lr) ** min((epoch - hold) / max(n - hold, 1e-9), 1.0)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


# ---------------------------------------------------------------------------------------
# The differentiable part: a module so that DDP can wrap it
# ---------------------------------------------------------------------------------------


def _head_at(head: nn.Sequential, vec: Tensor) -> Tensor:
    """The 1x1 head on gathered RoW vectors ``(N, C)`` -> ``(N, out)``. BatchNorm needs two
    or more vectors in train mode: a single one uses the running statistics."""
    x = vec[:, :, None, None]
    if head.training and x.shape[0] < 2:
        bns = [m for m in head.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.eval()
        try:
            return head(x)[:, :, 0, 0]
        finally:
            for m in bns:
                m.train()
    return head(x)[:, :, 0, 0]


class SiamMaskTrainer(nn.Module):
    """``forward(batch) -> losses`` of one stage (what DDP wraps).

    Args:
        model: a :class:`SiamMask`.
        stage: ``"base"`` or ``"refine"``.
        weights: :class:`LossWeights`.
        bf16_backbone: backbone under ``torch.autocast`` (bfloat16; outputs cast to fp32).

    ``forward`` returns a dict of scalars: ``total`` plus the unweighted terms (``score``,
    ``box``, ``mask``; ``sim`` for 2B) and metrics ``mask_iou``, ``iou5``, ``iou7``,
    ``rows`` (positive RoWs), detached.

    See book/09_training_lite.py.
    """

    def __init__(self, model: SiamMask, stage: str = "base", weights: LossWeights | None = None,
                 bf16_backbone: bool = False) -> None:
        super().__init__()
        if stage not in ("base", "refine"):
            raise ValueError(f"stage must be 'base' or 'refine', got {stage!r}")
        if stage == "refine" and model.refine is None:
            raise ValueError(f"the {model.config.name!r} model has no refinement module")
        self.model, self.stage, self.bf16 = model, stage, bf16_backbone
        self.weights = weights if weights is not None else LossWeights.released()

    def _features(self, x: Tensor) -> list[Tensor]:
        dev = x.device.type
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=self.bf16):
            feats = self.model.backbone(x)
        return [f.float() for f in feats]

    def forward(self, batch: dict) -> dict[str, Tensor]:
        m = self.model
        z, x = batch["template"], batch["search"]
        if self.stage == "refine":
            with torch.no_grad():
                zf = m.neck(self._features(z)[3])
                xfeats = self._features(x)
                xf = m.neck(xfeats[3])
        else:
            zf = m.neck(self._features(z)[3])
            xfeats = self._features(x)
            xf = m.neck(xfeats[3])
        rows = positive_rows(batch["mask_weight"])  # (N, 3): b, r, c
        corr = m.mask_head.correlate(m.mask_head.kernel(zf), xf)  # (B, C, n, n)
        labels = mask_patches(batch["mask_label"], rows)  # (N, 1, 127, 127)
        if self.stage == "refine":
            logits = self._refine_rows(xfeats, corr, rows)
            lm = mask_loss(logits, labels, self.weights.mask_reduction)
            out = {"total": self.weights.mask * lm, "mask": lm}
        else:
            vec = corr[rows[:, 0], :, rows[:, 1], rows[:, 2]]  # (N, C)
            logits = upsample_mask_logits(_head_at(m.mask_head.head, vec), m.config.mask_size)
            targets = dict(batch, mask_labels=labels)
            if m.box_head is None:
                sim = m.score_head(zf, xf)
                out = loss_2b(sim, logits, targets, self.weights)
            else:
                score = m.score_head(zf, xf)
                delta = m.box_head(zf, xf)
                out = loss_3b(score, delta, logits, targets, self.weights)
        iou = mask_iou(logits, labels)
        n = max(iou.numel(), 1)
        out.update(mask_iou=iou.sum() / n, iou5=(iou > 0.5).float().sum() / n,
                   iou7=(iou > 0.7).float().sum() / n, rows=torch.tensor(float(iou.numel())))
        return out

    def _refine_rows(self, feats: list[Tensor], corr: Tensor, rows: Tensor) -> Tensor:
        """Refinement of the positive RoWs of 143 searches (unpadded windows, released
        training branch restricted to the RoWs that enter the loss)."""
        ref = self.model.refine
        b, c, h, w = corr.shape
        flat = rows[:, 0] * h * w + rows[:, 1] * w + rows[:, 2]
        gathered = []
        for f, win, s in zip(feats[:3], ref.windows, ref.steps):
            cols = F.unfold(f, (win, win), stride=s)  # (B, Cf*win*win, h*w)
            if cols.shape[2] != h * w:
                raise ValueError(f"feature {tuple(f.shape[2:])} gives {cols.shape[2]} windows for "
                                 f"{h}x{w} RoWs; the refine stage needs 143x143 searches")
            cols = cols.permute(0, 2, 1).reshape(b * h * w, f.shape[1], win, win)
            gathered.append(cols[flat])
        vec = corr.permute(0, 2, 3, 1).reshape(b * h * w, c, 1, 1)[flat]
        return ref._decode(vec, *gathered)


# ---------------------------------------------------------------------------------------
# Freezing, BN policy, optimiser
# ---------------------------------------------------------------------------------------


def set_trainable(model: SiamMask, cfg: TrainConfig, epoch: int) -> None:
    """``requires_grad`` per stage and epoch.

    base: neck and heads trainable, refinement frozen, backbone frozen except the
    ``unfreeze`` prefixes from ``unfreeze_epoch`` on. refine: only the mask branch and the
    refinement module (released ``train_siammask_refine``).

    See book/09_training_lite.py.
    """
    unfrozen = cfg.unfreeze_epoch is not None and epoch >= cfg.unfreeze_epoch
    for name, p in model.named_parameters():
        if cfg.stage == "refine":
            p.requires_grad_(name.startswith(("mask_head.conv_", "refine.")))
        elif name.startswith("backbone."):
            p.requires_grad_(unfrozen and name.startswith(tuple(cfg.unfreeze)))
        else:
            p.requires_grad_(not name.startswith("refine."))


def set_modes(model: SiamMask, cfg: TrainConfig) -> None:
    """Train/eval modes: backbone BN frozen (eval) unless ``bn_policy="train_unfrozen"``
    re-enables the BN of trainable blocks; refine stage: everything but the mask branch
    and the refinement in eval mode (released).

    See book/09_training_lite.py.
    """
    model.train()
    model.backbone.eval()
    if cfg.stage == "refine":
        model.eval()
        model.mask_head.train()
        model.refine.train()
        return
    if model.refine is not None:
        model.refine.eval()
    if cfg.bn_policy == "train_unfrozen":
        for _name, mod in model.backbone.named_modules():
            if isinstance(mod, nn.BatchNorm2d) and any(
                    p.requires_grad for p in mod.parameters()):
                mod.train()
    elif cfg.bn_policy != "frozen":
        raise ValueError(f"bn_policy must be 'frozen' or 'train_unfrozen', got {cfg.bn_policy!r}")


def build_optimizer(model: SiamMask, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD over the trainable parameters; the backbone group carries ``backbone_lr_mult``
    (stored as ``lr_mult`` in each group).

    See book/09_training_lite.py.
    """
    groups = []
    bb = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith("backbone.")]
    if rest:
        groups.append({"params": rest, "lr_mult": 1.0})
    if bb:
        groups.append({"params": bb, "lr_mult": cfg.backbone_lr_mult})
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].copy()),
            "numpy_pos": int(np_state[2]), "python": json.dumps(random.getstate())}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(("MT19937", s["numpy_keys"].numpy().astype(np.uint32), s["numpy_pos"],
                         0, 0.0))
    st = json.loads(s["python"])
    random.setstate((st[0], tuple(st[1]), st[2]))


def _finite_check(losses: dict, step: int, cfg: TrainConfig) -> str | None:
    bad = [f"{k}={float(v):.4g}" for k, v in losses.items()
           if k in ("total", "score", "box", "mask", "sim") and
           (not math.isfinite(float(v)) or abs(float(v)) > cfg.max_loss)]
    if not bad:
        return None
    msg = f"iteration {step}: non-finite or too large loss ({', '.join(bad)})"
    if cfg.nonfinite == "stop":
        raise NonFiniteLossError(msg)
    return msg


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


def build_model_for(cfg: TrainConfig, previous: str | os.PathLike | None = None) -> SiamMask:
    """The network of a stage with its initial weights (``init``).

    See book/09_training_lite.py.
    """
    from .checkpoint import load_checkpoint

    if cfg.init not in ("imagenet", "random", "previous"):
        return load_checkpoint(cfg.init)
    if cfg.init == "previous":
        if previous is None:
            raise ValueError(f"stage {cfg.stage!r} starts from the previous stage, none given")
        return load_checkpoint(previous)
    model = SiamMask(model_config(cfg.model))
    if cfg.init == "imagenet":
        if model.config.backbone != "efficientnet_lite0":
            raise ValueError("init='imagenet' is available for the efficientnet_lite0 backbone "
                             "(ResNet-50 ImageNet weights are not shipped)")
        from .models.efficientnet import load_efficientnet_lite0_imagenet

        rep = load_efficientnet_lite0_imagenet(model.backbone)
        if rep["missing"] or rep["shape_mismatch"]:
            raise ValueError(f"ImageNet weights incomplete: {rep['missing'][:5]} "
                             f"{rep['shape_mismatch'][:5]}")
    return model


class _Logger:
    FIELDS = ["step", "epoch", "lr", "total", "score", "box", "mask", "sim", "mask_iou", "iou5",
              "iou7", "rows", "pairs_per_s", "elapsed_s", "skipped"]

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.path = run_dir / "log.csv"
        self.enabled = enabled
        if enabled and not self.path.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.FIELDS)

    def truncate_after(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint (they will be redone)."""
        if not (self.enabled and self.path.exists()):
            return
        with open(self.path) as fh:
            rows = list(csv.reader(fh))
        keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < step]
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerows(keep)

    def write(self, row: dict) -> None:
        if self.enabled:
            with open(self.path, "a", newline="") as fh:
                csv.writer(fh).writerow([row.get(k, "") for k in self.FIELDS])


def plot_log(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Loss curves (total and each term, log scale) and the RoW mask IoU from ``log.csv``.

    See book/09_training_lite.py.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    step = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for k in ("total", "score", "box", "mask", "sim"):
        vals = [float(r[k]) if r[k] not in ("", "nan") else float("nan") for r in rows]
        if any(math.isfinite(v) and v > 0 for v in vals):
            axes[0].plot(step, vals, label=k)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("iteration")
    axes[0].legend()
    axes[1].plot(step, [float(r["mask_iou"] or "nan") for r in rows], label="RoW mask IoU")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def build_dataset(cfg: TrainConfig, data_root=None, world_size: int = 1) -> PairDataset:
    """The stage's :class:`PairDataset` from ``cfg.data``, validated (every file decoded).

    Memory: one process (``world_size == 1``) keeps every decoded frame and mask
    (``in_memory=True``: ~1.8 GB for DAVIS-2016 train at 240p + COCO-128). DDP ranks
    (``world_size > 1``) decode on demand (``in_memory=False``, unless a source entry sets
    ``in_memory`` itself): a rank holds the file lists and boxes (a few MB) plus the frames of
    the batches in flight, so W ranks do not hold W copies. Items are the same either way.

    See book/09_training_lite.py.
    """
    spec = [dict(s) for s in cfg.data]
    if world_size > 1:
        for s in spec:
            s.setdefault("in_memory", False)
    sources = build_sources(spec, data_root)
    pc = PairConfig.refine if cfg.stage == "refine" else PairConfig.base
    return PairDataset(sources, pc(neg=cfg.neg, gray=cfg.gray, source_probs=cfg.source_probs,
                                   variety=Variety.from_dict(cfg.variety)),
                       seed=cfg.seed, length=cfg.pairs_per_epoch)


def _unused_trainable(model: SiamMask, cfg: TrainConfig) -> list[str]:
    """Trainable parameters the stage's forward never reaches (what DDP's
    ``find_unused_parameters`` is for): base runs backbone, neck, score/box/mask heads;
    refine runs the mask branch and the refinement. Empty for every shipped model, so DDP
    runs without the per-iteration graph traversal and its warning."""
    ran = {"base": ("backbone.", "neck.", "score_head.", "box_head.", "mask_head."),
           "refine": ("mask_head.conv_", "refine.")}[cfg.stage]
    return [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith(ran)]


def train(cfg: TrainConfig, run_dir: str | os.PathLike, resume: str | os.PathLike | None = None,
          previous: str | os.PathLike | None = None, data_root=None, max_steps: int | None = None,
          rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu",
          progress: bool = True, dataset: PairDataset | None = None) -> dict:
    """Run (or resume) one stage.

    Args:
        cfg: the stage.
        run_dir: output folder: ``last.pth`` (latest checkpoint), ``epoch_NN.pth``,
            ``final.pth``, ``log.csv``, ``loss.png``, ``summary.json``.
        resume: a checkpoint written by this function (``last.pth``); continues exactly.
        previous: the previous stage's ``final.pth`` (``init="previous"``).
        data_root: dataset root (default :func:`siammask_edu.data_root`).
        max_steps: stop (with a checkpoint) after this many steps of this call: an
            interruption, for tests and time-boxed sessions.
        rank, world_size: DDP position (:mod:`siammask_edu.distributed` sets them); rank 0
            logs and writes checkpoints.
        dataset: a ready :class:`PairDataset` (tests); default built from ``cfg.data``.

    Returns:
        dict: ``step`` (steps done), ``finished`` (bool), ``last`` (checkpoint path),
        ``history`` (list of per-step loss dicts of this call), ``skipped`` (messages).

    Raises:
        NonFiniteLossError: policy ``stop`` and a bad loss.

    See book/09_training_lite.py.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, Path(run_dir), resume, previous, data_root, max_steps, rank,
                      world_size, device, progress, dataset)
    finally:
        torch.set_num_threads(threads)


def _train(cfg, run_dir, resume, previous, data_root, max_steps, rank, world_size, device,
           progress, dataset) -> dict:
    main = rank == 0
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    start_step, state = 0, None
    if resume is not None:
        raw = read_state_file(resume)
        state = raw["extra"]
        if state.get("stage") != cfg.stage:
            raise ValueError(f"{resume} is a {state.get('stage')!r} checkpoint, not {cfg.stage!r}")
        from .checkpoint import load_checkpoint

        model = load_checkpoint(resume)
        start_step = int(state["step"])
    else:
        model = build_model_for(cfg, previous)
    model.to(device)
    if start_step > cfg.total_steps:
        raise ValueError(f"{resume} holds {start_step} steps, more than the {cfg.total_steps} "
                         f"of {cfg.epochs} epochs the config asks for")
    if dataset is None:
        dataset = build_dataset(cfg, data_root, world_size)
        if main and progress:
            print(f"[{cfg.name}/{cfg.stage}] data: {describe(dataset.sources)}", flush=True)
    weights = {"released": LossWeights.released(), "paper": LossWeights.paper()}[cfg.loss]
    if cfg.stage == "refine":
        weights = dataclasses.replace(weights, score=0.0, box=0.0)
    trainer = SiamMaskTrainer(model, cfg.stage, weights, cfg.bf16_backbone)
    total = cfg.total_steps
    end = total if max_steps is None else min(total, start_step + max_steps)
    micro = cfg.batch_size // world_size
    if micro * world_size != cfg.batch_size or micro % cfg.grad_accum:
        raise ValueError(f"batch {cfg.batch_size} must split into {world_size} ranks x "
                         f"{cfg.grad_accum} micro-batches")
    sampler = PairSampler(end - start_step, cfg.batch_size, start_step, rank, world_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=micro, sampler=sampler, num_workers=cfg.num_workers,
        collate_fn=collate, persistent_workers=False,
        prefetch_factor=4 if cfg.num_workers else None)

    def setup(epoch):
        set_trainable(model, cfg, epoch)
        set_modes(model, cfg)
        opt = build_optimizer(model, cfg)
        net = trainer
        if world_size > 1:
            net = nn.parallel.DistributedDataParallel(
                trainer, find_unused_parameters=bool(_unused_trainable(model, cfg)))
        return opt, net

    def phase(e: int) -> bool:  # True once the backbone blocks are unfrozen
        return cfg.unfreeze_epoch is not None and e >= cfg.unfreeze_epoch

    epoch = start_step // cfg.steps_per_epoch
    optimizer, net = setup(epoch)
    if state is not None:
        # a resume exactly at an unfreeze boundary starts a fresh optimiser, as the
        # uninterrupted run does there
        if bool(state.get("unfrozen", False)) == phase(epoch):
            optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
    logger = _Logger(run_dir, main)
    if state is not None:
        logger.truncate_after(start_step)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    def save(path, step):
        extra = {"stage": cfg.stage, "step": step, "train_config": json.dumps(cfg.to_dict()),
                 "optimizer": optimizer.state_dict(), "rng": _rng_state(),
                 "unfrozen": phase((step - 1) // cfg.steps_per_epoch) if step else False}
        save_checkpoint(model, path, extra)

    history, skipped = [], []
    t0 = time.time()
    last_ckpt = time.time()
    pairs_done = 0
    bar = None
    if main and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=start_step, desc=f"{cfg.name}/{cfg.stage}",
                   mininterval=1.0 if sys.stderr.isatty() else 60.0, file=sys.stderr)
    step = start_step
    it = iter(loader)
    while step < end:
        epoch = step // cfg.steps_per_epoch
        if step % cfg.steps_per_epoch == 0 and step > 0 and phase(epoch) != phase(epoch - 1):
            optimizer, net = setup(epoch)  # unfreeze: rebuild (momentum reset, as released)
        if step % cfg.steps_per_epoch == 0 and main and step > 0 and (
                step > start_step or not (run_dir / f"epoch_{epoch:02d}.pth").exists()):
            save(run_dir / f"epoch_{epoch:02d}.pth", step)
        lr = lr_at(cfg, step / cfg.steps_per_epoch)
        for g in optimizer.param_groups:
            g["lr"] = lr * g["lr_mult"]
        batch = {k: v.to(device) for k, v in next(it).items()}
        optimizer.zero_grad(set_to_none=True)
        chunks = [{k: v.chunk(cfg.grad_accum)[i] for k, v in batch.items()}
                  for i in range(cfg.grad_accum)]
        parts = []
        for ch in chunks:
            losses = net(ch)
            (losses["total"] / cfg.grad_accum).backward()
            parts.append({k: float(v.detach()) for k, v in losses.items()})
        rec = {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}
        if world_size > 1:  # every rank must take the same skip/step decision
            vals = torch.tensor([rec[k] for k in sorted(rec)], dtype=torch.float64)
            torch.distributed.all_reduce(vals)
            rec = dict(zip(sorted(rec), (vals / world_size).tolist()))
        msg = _finite_check(rec, step, cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        if msg is None:
            gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            if not torch.isfinite(gnorm):
                msg = f"iteration {step}: non-finite gradient norm (loss {rec['total']:.4g})"
                if cfg.nonfinite == "stop":
                    raise NonFiniteLossError(msg)
        if msg is None:
            optimizer.step()
        else:
            skipped.append(msg)
            optimizer.zero_grad(set_to_none=True)
            if main:
                print(f"[{cfg.name}/{cfg.stage}] skipped {msg}", file=sys.stderr, flush=True)
        step += 1
        pairs_done += cfg.batch_size
        rec.update(step=step - 1, epoch=epoch, lr=lr, skipped=int(msg is not None))
        history.append(rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{rec['total']:.3f}", iou=f"{rec['mask_iou']:.2f}",
                            refresh=False)
        if main and (step % cfg.log_every == 0 or step == end):
            window = history[-cfg.log_every:]
            row = {k: float(np.mean([h.get(k, float("nan")) for h in window]))
                   for k in _Logger.FIELDS if k in window[-1]}
            row.update(step=step - 1, epoch=epoch, lr=lr,
                       skipped=sum(h["skipped"] for h in window),
                       pairs_per_s=pairs_done / max(time.time() - t0, 1e-9),
                       elapsed_s=time.time() - t0)
            logger.write(row)
        periodic = cfg.checkpoint_every and step % cfg.checkpoint_every == 0
        timed = time.time() - last_ckpt > cfg.checkpoint_minutes * 60
        if main and (periodic or timed or step == end):
            save(run_dir / "last.pth", step)
            last_ckpt = time.time()
            try:
                plot_log(logger.path, run_dir / "loss.png")
            except Exception as exc:  # a plot must never stop training
                print(f"loss plot failed: {exc}", file=sys.stderr)
    if bar is not None:
        bar.close()
    finished = step >= total
    if world_size > 1:
        torch.distributed.barrier()  # rank 0's files exist before anyone reads them
    if main and finished:
        save_checkpoint(model, run_dir / "final.pth",
                        {"stage": cfg.stage, "step": step,
                         "train_config": json.dumps(cfg.to_dict())})
        summary = {"config": cfg.to_dict(), "steps": step, "skipped": skipped,
                   "seconds_this_call": time.time() - t0,
                   "last_logged": history[-1] if history else None}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if world_size > 1:
        torch.distributed.barrier()
    return {"step": step, "finished": finished, "last": run_dir / "last.pth",
            "history": history, "skipped": skipped, "model": model}


# ---------------------------------------------------------------------------------------
# Runs of several stages from a config file
# ---------------------------------------------------------------------------------------


def load_run_config(path: str | os.PathLike) -> dict:
    """Read a run file (JSON): ``{"name", "run_dir", "stages": [TrainConfig fields, ...]}``.
    A stage may be ``{"preset": "lite", ...overrides}``.

    Raises:
        FileNotFoundError, ValueError: missing file, unknown preset/fields.

    See book/09_training_lite.py.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training config {p} does not exist")
    raw = json.loads(p.read_text())
    presets = {"tiny": TrainConfig.tiny, "lite": TrainConfig.lite,
               "lite_refine": TrainConfig.lite_refine}
    stages = []
    for s in raw.get("stages", []):
        s = dict(s)
        preset = s.pop("preset", None)
        if preset is not None:
            if preset not in presets:
                raise ValueError(f"unknown stage preset {preset!r}; expected {sorted(presets)}")
            base = presets[preset]().to_dict()
            base.update(s)
            s = base
        stages.append(TrainConfig.from_dict(s))
    if not stages:
        raise ValueError(f"{p} defines no stages")
    return {"name": raw.get("name", stages[0].name),
            "run_dir": raw.get("run_dir", f"runs/{raw.get('name', stages[0].name)}"),
            "stages": stages}


# settings that may change between an interrupted or finished stage and its continuation
# (epochs: a finished stage is extended to the new total; the rest do not change the result)
RESUMABLE_CHANGES = ("epochs", "threads", "num_workers", "log_every", "checkpoint_minutes",
                     "checkpoint_every")


class RunError(ValueError):
    """A run that cannot continue as asked (the message says why and what to do).

    See book/09_training_lite.py.
    """


def _stage_record(path: Path) -> tuple[dict, int]:
    extra = read_state_file(path)["extra"]
    return json.loads(extra.get("train_config") or "{}"), int(extra.get("step", 0))


def _changes(old: dict, cfg: TrainConfig) -> list[str]:
    new = json.loads(json.dumps(cfg.to_dict()))
    old = json.loads(json.dumps(old))
    return [f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.items()
            if k not in RESUMABLE_CHANGES and old.get(k) != v]


def train_run(run: dict, resume: bool = False, data_root=None, progress: bool = True,
              max_steps: int | None = None, rank: int = 0, world_size: int = 1,
              device: str | torch.device = "cpu") -> Path:
    """Run every stage of a run in order (``<run_dir>/<i>_<stage>/``), each starting from
    the previous stage's ``final.pth``.

    With ``resume``: an interrupted stage continues from its ``last.pth``; a finished stage
    is kept, or, when ``epochs`` was raised, extended from its ``last.pth`` to the new total
    (the steps already done are kept; the LR schedule of the remaining steps follows the new
    ``epochs``). Only :data:`RESUMABLE_CHANGES` may differ from the stored config.

    Returns:
        The last stage's ``final.pth`` (or ``last.pth`` if interrupted by ``max_steps``).

    Raises:
        RunError: the stored stage was trained with other settings, holds more steps than
            asked, lacks ``last.pth``, or would be extended under a later stage that
            already started from it (the message names the folders and what to do).

    See book/09_training_lite.py.
    """
    previous = None
    out = None
    stages = run["stages"]
    dirs = [Path(run["run_dir"]) / f"{i}_{c.stage}" for i, c in enumerate(stages)]
    for i, cfg in enumerate(stages):
        d = dirs[i]
        final, last = d / "final.pth", d / "last.pth"
        ck = None
        if resume and (final.is_file() or last.is_file()):
            old, done = _stage_record(final if final.is_file() else last)
            changed = _changes(old, cfg)
            if changed:
                raise RunError(f"{d} was trained with other settings ({'; '.join(changed)}); "
                               "restore them or start a new run_dir (only "
                               f"{', '.join(RESUMABLE_CHANGES)} may change on --resume)")
            old_epochs = old.get("epochs", "?")
            if done > cfg.total_steps:
                raise RunError(f"{d} already trained {done} steps ({old_epochs} epochs); the "
                               f"config asks for {cfg.epochs} epochs ({cfg.total_steps} "
                               "steps): raise epochs, or start a new run_dir")
            if final.is_file() and done == cfg.total_steps:
                if rank == 0:
                    print(f"[{cfg.name}/{cfg.stage}] {d} already finished ({done} steps, "
                          f"{cfg.epochs} epochs): nothing to train; raise epochs to extend it",
                          file=sys.stderr, flush=True)
                previous = out = final
                continue
            if not last.is_file():
                raise RunError(f"{d} has final.pth but no last.pth (the optimiser state): it "
                               f"cannot be extended from {done} to {cfg.total_steps} steps")
            if final.is_file():
                later = [str(x) for x in dirs[i + 1:] if x.exists()]
                if later:
                    raise RunError(f"extending {d} from {old_epochs} to {cfg.epochs} epochs "
                                   f"would leave {', '.join(later)} trained from its old "
                                   "final weights: extend in a new run_dir (copy "
                                   f"{d.name} there) or remove {', '.join(later)}")
                if rank == 0:
                    print(f"[{cfg.name}/{cfg.stage}] extending the finished stage in {d}: "
                          f"{old_epochs} -> {cfg.epochs} epochs ({done} -> {cfg.total_steps} "
                          f"steps) from {last}", file=sys.stderr, flush=True)
            ck = last
        res = train(cfg, d, resume=ck, previous=previous, data_root=data_root,
                    progress=progress and rank == 0, max_steps=max_steps, rank=rank,
                    world_size=world_size, device=device)
        if not res["finished"]:
            return res["last"]
        previous = out = final
    return out or previous


def train_main(config_path: str | os.PathLike, resume: str | os.PathLike | bool | None = None,
               data: str | os.PathLike | None = None, rank: int = 0, world_size: int = 1,
               device: str | torch.device = "cpu", run: dict | None = None) -> int:
    """Entry point for ``siammask-edu train CONFIG [--resume] [--data ROOT]`` and, with
    ``rank``/``world_size``, for each DDP process (:mod:`siammask_edu.distributed`).

    Args:
        config_path: run file (see :func:`load_run_config`, e.g. ``configs/train_lite.json``).
        resume: truthy: continue the run in its ``run_dir`` (a path is accepted and used as
            the run folder); a finished stage whose ``epochs`` was raised is extended.
        data: dataset root (default :func:`siammask_edu.data_root`).
        run: the already loaded run file (else read from ``config_path``).

    Prints ``error: ...`` (one line, stderr) on a bad config, bad data or a run that cannot
    continue, and ``finished: <final.pth>`` (rank 0) at the end.

    Returns:
        Exit status: 0 finished, 1 stopped on a bad loss, 2 bad config or data.

    See book/09_training_lite.py.
    """
    def fail(exc, code):
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return code

    try:
        if run is None:
            run = load_run_config(config_path)
    except (FileNotFoundError, ValueError) as exc:
        return fail(exc, 2)
    if resume not in (None, False, True, "", "auto"):
        run["run_dir"] = str(resume)
        resume = True
    try:
        final = train_run(run, resume=bool(resume), data_root=data, rank=rank,
                          world_size=world_size, device=device)
    except NonFiniteLossError as exc:
        return fail(exc, 1)
    except (ValueError, FileNotFoundError) as exc:  # DataError, RunError, bad settings
        return fail(exc, 2)
    if rank == 0:
        print(f"finished: {final}", flush=True)
    return 0


def _cli(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m siammask_edu.training",
                                 description="train SiamMask from a run file")
    ap.add_argument("config", help="run file, e.g. configs/train_lite.json")
    ap.add_argument("--resume", action="store_true", help="continue the run in its run_dir")
    ap.add_argument("--data", default=None, help="dataset root (default: data_root())")
    args = ap.parse_args(argv)
    return train_main(args.config, resume=args.resume, data=args.data)


if __name__ == "__main__":
    sys.exit(_cli())


__all__ = ["TrainConfig", "lr_at", "SiamMaskTrainer", "set_trainable", "set_modes",
           "build_optimizer", "build_model_for", "train", "train_run", "train_main",
           "load_run_config", "plot_log", "NonFiniteLossError", "RunError", "build_dataset",
           "RESUMABLE_CHANGES"]
