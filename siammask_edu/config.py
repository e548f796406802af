"""Configuration: model presets, tracker presets, and the one switch for short (CI) runs.

Every preset is a plain function returning a frozen dataclass; nothing is read from a
global (the pysot ``cfg`` smell). Values and their sources are listed in
``released-implementation.md`` §1–§4 and in the paper (§3, Appendix A).

See book/01_siamese_tracking.py.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

SHORT_RUNS_ENV = "SIAMMASK_EDU_SHORT_RUNS"
SHORT_RUNS_ALIASES = ("SIAMMASK_EDU_FAST",)  # the switch's first name, still honoured


def _truthy(value: str | None) -> bool:
    return (value or "0") not in ("", "0", "false", "False")


def fast_mode() -> bool:
    """True when ``SIAMMASK_EDU_SHORT_RUNS`` (or its older name ``SIAMMASK_EDU_FAST``) is set
    to a non-empty value other than ``0``.

    CI sets it (``scripts/test.sh``). Notebooks and tests use it to shorten loops — fewer
    frames, training steps, timing repeats (``n = 3 if fast_mode() else 2000``); it never
    changes a computed value, only how many are computed. The chapters also run torch on 1
    thread under it, so that two notebooks can run side by side on two cores.
    """
    return any(_truthy(os.environ.get(name)) for name in (SHORT_RUNS_ENV, *SHORT_RUNS_ALIASES))


THREADS_ENV = "SIAMMASK_EDU_THREADS"


def book_threads() -> int:
    """How many torch threads a book chapter uses: ``$SIAMMASK_EDU_THREADS`` if set, else 1
    under :func:`fast_mode` (CI runs two notebooks side by side on two cores), else 2.

    Each chapter's first cell states its run time on an idle 2-core machine with 2 threads.
    On a busy machine the threads wait for cores: set ``SIAMMASK_EDU_THREADS`` to the
    number of cores that are really free (1 when something else runs) before starting
    Jupyter.

    Raises:
        ValueError: ``$SIAMMASK_EDU_THREADS`` is not a positive integer.
    """
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"${THREADS_ENV} must be a positive integer, got {env!r}")
        return int(env)
    return 1 if fast_mode() else 2


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a SiamMask network.

    Attributes:
        name: preset name, stored in our checkpoints so that loading needs no config file.
        backbone: ``"resnet50"`` (the released surgery, Table 6) or ``"efficientnet_lite0"``.
        backbone_width: channels of the first ResNet stage (64 for ResNet-50; smaller for
            ``tiny``). Stage widths are ``width * (1, 2, 4)`` planes with expansion 4.
        backbone_blocks: bottleneck blocks per stage (layer1, layer2, layer3).
        feature_channels: channels after the adjust layer (256 in the paper).
        hidden_channels: channels inside each depth-wise head (256 in the paper).
        exemplar_crop: pixels removed on every side of the adjusted exemplar feature when
            its width is < 20 (released: 4, so 15 -> 7 and a 25x25 response); ``0`` keeps
            the paper's 15x15 exemplar and its 17x17 response.
        anchor_num: anchors per RoW, k = 5 (ratios 0.33, 0.5, 1, 2, 3; scale 8).
        branches: ``"three"`` (score, box, mask: SiamMask) or ``"two"`` (similarity + mask:
            SiamMask-2B, paper §3.2, Table 8).
        mask_size: side of the per-RoW mask of the mask head (63: 63*63 = 3969 channels).
        refine: add the refinement module (sharp masks, 127x127, paper Fig. 9).
    """

    name: str = "sharp"
    backbone: str = "resnet50"
    backbone_width: int = 64
    backbone_blocks: tuple[int, int, int] = (3, 4, 6)
    feature_channels: int = 256
    hidden_channels: int = 256
    exemplar_crop: int = 4
    anchor_num: int = 5
    branches: str = "three"
    mask_size: int = 63
    refine: bool = True

    def replace(self, **changes) -> "ModelConfig":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["backbone_blocks"] = list(self.backbone_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {sorted(unknown)}")
        d = dict(d)
        if "backbone_blocks" in d:
            d["backbone_blocks"] = tuple(d["backbone_blocks"])
        return cls(**d)

    # -- presets -----------------------------------------------------------------------
    @classmethod
    def sharp(cls) -> "ModelConfig":
        """Released SiamMask with refinement (SiamMask_DAVIS/VOT/VOT_LD.pth): 21,482,052 params."""
        return cls(name="sharp")

    @classmethod
    def base(cls) -> "ModelConfig":
        """Released base model: 63x63 masks from the mask head, no refinement: 18,816,735 params."""
        return cls(name="base", refine=False)

    @classmethod
    def paper(cls) -> "ModelConfig":
        """The paper's geometry: uncropped 15x15 exemplar feature, 17x17 response (§3, Table 6)."""
        return cls(name="paper", exemplar_crop=0, refine=False)

    @classmethod
    def two_branch(cls) -> "ModelConfig":
        """SiamMask-2B: one SiamFC-style similarity channel per RoW plus the mask branch (Table 8)."""
        return cls(name="two_branch", branches="two", anchor_num=1, refine=False)

    @classmethod
    def tiny(cls) -> "ModelConfig":
        """Same geometry as ``sharp`` (127/255 crops, stride 8, 25x25, 63x63, 127x127 masks),
        narrow and shallow: for tests, CI and chapters about shapes."""
        return cls(
            name="tiny",
            backbone_width=8,
            backbone_blocks=(1, 1, 1),
            feature_channels=32,
            hidden_channels=32,
        )

    @classmethod
    def lite(cls) -> "ModelConfig":
        """SiamMask-Lite for CPUs: EfficientNet-Lite0 (ImageNet, stride-8 surgery; BGR 0..255
        crops converted inside), neck 112 -> 128, heads with 128 hidden channels, refinement
        on stride-2/4/8 features with 64/32/16 windows. Same geometry and tracker as
        ``sharp`` (127/255 crops, 25x25 RoWs, 63x63 head, 127x127 masks).

        See book/09_training_lite.py.
        """
        return cls(
            name="lite",
            backbone="efficientnet_lite0",
            feature_channels=128,
            hidden_channels=128,
        )


MODEL_PRESETS = ("sharp", "base", "paper", "two_branch", "tiny", "lite")


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a preset name (see ``MODEL_PRESETS``)."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; expected one of {MODEL_PRESETS}")
    return getattr(ModelConfig, name)()


BOX_STRATEGIES = ("mbr", "minmax", "opt")  # = boxes.STRATEGIES (not imported: cv2, shapely)

# The allowed range of every TrackerConfig field, as documented (docstring, README table)
# and as checked by TrackerConfig.__post_init__. Derived from what each value means: weights
# of a convex mix and probabilities in [0, 1], strengths and areas >= 0, sizes positive
# integers, a search crop larger than the exemplar by whole strides.
TRACKER_RANGES = {
    "name": "non-empty string",
    "penalty_k": "finite, penalty_k >= 0",
    "window_influence": "0 <= window_influence <= 1",
    "lr": "0 <= lr <= 1",
    "seg_thr": "0 <= seg_thr < 1",
    "exemplar_size": "integer, exemplar_size >= 1",
    "instance_size": "integer, exemplar_size < instance_size, with instance_size - "
                     "exemplar_size a multiple of total_stride",
    "total_stride": "integer, total_stride >= 1",
    "base_size": "even integer, base_size >= 0",
    "context_amount": "finite, context_amount >= 0",
    "ratios": "non-empty sequence of finite numbers > 0",
    "scales": "non-empty sequence of finite numbers > 0",
    "min_size": "finite, min_size > 0",
    "min_polygon_area": "finite, min_polygon_area >= 0",
    "box_strategy": "one of 'mbr', 'minmax', 'opt'",
    "lost_score": "0 <= lost_score <= 1",
    "extra": "a dict",
}

# (lowest, lowest allowed?, highest, highest allowed?) of the real-valued fields
_REAL_BOUNDS = {
    "penalty_k": (0.0, True, math.inf, False),
    "window_influence": (0.0, True, 1.0, True),
    "lr": (0.0, True, 1.0, True),
    "seg_thr": (0.0, True, 1.0, False),
    "context_amount": (0.0, True, math.inf, False),
    "min_size": (0.0, False, math.inf, False),
    "min_polygon_area": (0.0, True, math.inf, False),
    "lost_score": (0.0, True, 1.0, True),
}
_INT_MIN = {"exemplar_size": 1, "instance_size": 1, "total_stride": 1, "base_size": 0}


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


@dataclass(frozen=True)
class TrackerConfig:
    """Hyper-parameters of the online tracker (released ``TrackerConfig`` + config json).

    Every field is checked when a config is made (also by :meth:`replace`): a value
    outside its range raises a ``ValueError`` that names the field, the value and the
    range, listing every bad field at once. Numbers are stored as Python ``float``/``int``
    (a NumPy scalar is accepted), ``ratios``/``scales`` as tuples of floats.

    Attributes:
        name: preset name. ``name``: non-empty string.
        penalty_k: scale/ratio change penalty strength (§4.5 step 5; 0: no penalty).
            ``penalty_k``: finite, penalty_k >= 0.
        window_influence: weight of the cosine (Hanning) window in the final score,
            ``(1 - w) * penalised score + w * window``.
            ``window_influence``: 0 <= window_influence <= 1.
        lr: damping of the size update, multiplied by penalty*score (position is undamped;
            0 keeps the first frame's size). ``lr``: 0 <= lr <= 1.
        seg_thr: mask threshold, strict ``>`` on probabilities (1 would never give a mask).
            ``seg_thr``: 0 <= seg_thr < 1.
        exemplar_size: exemplar crop side, pixels (127).
            ``exemplar_size``: integer, exemplar_size >= 1.
        instance_size: search crop side, pixels (255); the response map steps by
            ``total_stride`` crop pixels. ``instance_size``: integer, exemplar_size <
            instance_size, with instance_size - exemplar_size a multiple of total_stride.
        total_stride: stride of the response map in crop pixels (8).
            ``total_stride``: integer, total_stride >= 1.
        base_size: released offset of the exemplar crop (8 -> 25x25 response): twice the
            pixels the exemplar feature loses on each side. ``base_size``: even integer,
            base_size >= 0.
        context_amount: context added around the target, as a fraction of (w + h).
            ``context_amount``: finite, context_amount >= 0.
        ratios: anchor aspect ratios (h/w). ``ratios``: non-empty sequence of finite
            numbers > 0.
        scales: anchor scales. ``scales``: non-empty sequence of finite numbers > 0.
        min_size: lower clamp of the tracked width/height, pixels (released: 10).
            ``min_size``: finite, min_size > 0.
        min_polygon_area: a mask contour must be larger than this (pixels^2) to give the
            rotated box; otherwise the axis-aligned box is the polygon (released: 100).
            ``min_polygon_area``: finite, min_polygon_area >= 0.
        box_strategy: how the rotated box is fitted to the mask: ``"mbr"`` (released),
            ``"minmax"`` or ``"opt"`` (paper Table 1).
            ``box_strategy``: one of 'mbr', 'minmax', 'opt'.
        lost_score: :attr:`TrackResult.lost` is ``score < lost_score`` (the score is a
            probability: 0 never flags a frame). The default 0.5 is
            an **uncalibrated default** (the score is a foreground probability; 0.5 is
            where the score branch calls a RoW background), not a measured value.
            ``scripts/calibrate_lost.py`` measures a threshold for a given checkpoint on
            DAVIS-2016 train sequences; a shipped checkpoint that carries one
            (``extra["lost_score"]``) sets it in :meth:`Tracker.from_pretrained`.
            ``lost_score``: 0 <= lost_score <= 1.
        extra: free-form notes, not compared. ``extra``: a dict.

    Raises:
        ValueError: a field outside its range (all such fields in one message).
    """

    name: str = "davis"
    penalty_k: float = 0.04
    window_influence: float = 0.40
    lr: float = 1.0
    seg_thr: float = 0.35
    exemplar_size: int = 127
    instance_size: int = 255
    total_stride: int = 8
    base_size: int = 8
    context_amount: float = 0.5
    ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    scales: tuple[float, ...] = (8.0,)
    min_size: float = 10.0
    min_polygon_area: float = 100.0
    box_strategy: str = "mbr"
    lost_score: float = 0.5  # uncalibrated default, see the docstring
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        bad: list[str] = []
        fixed: dict = {}

        def fail(name, value, why=""):
            why = f" {why};" if why else ""
            bad.append(f"{name}={value!r}:{why} expected {TRACKER_RANGES[name]}")

        if not isinstance(self.name, str) or not self.name:
            fail("name", self.name, "must be a non-empty string")
        for name, (lo, lo_ok, hi, hi_ok) in _REAL_BOUNDS.items():
            v = getattr(self, name)
            if not _is_real(v):
                fail(name, v, "must be a number")
                continue
            f = float(v)
            inside = (math.isfinite(f) and (f >= lo if lo_ok else f > lo)
                      and (f <= hi if hi_ok else f < hi))
            if not inside:
                fail(name, v, "" if math.isfinite(f) or math.isnan(f) else "not finite")
            else:
                fixed[name] = f
        for name, lo in _INT_MIN.items():
            v = getattr(self, name)
            if not _is_int(v):
                fail(name, v, "must be an integer")
            elif int(v) < lo:
                fail(name, v)
            elif name == "base_size" and int(v) % 2:
                fail(name, v, "must be even")
            else:
                fixed[name] = int(v)
        ex, ins, st = (fixed.get(k) for k in ("exemplar_size", "instance_size", "total_stride"))
        if "instance_size" in fixed and ex is not None:
            if ins <= ex:
                fail("instance_size", self.instance_size,
                     f"the search crop must be larger than the exemplar ({ex})")
                fixed.pop("instance_size")
            elif st is not None and (ins - ex) % st:
                fail("instance_size", self.instance_size,
                     f"{ins} - {ex} = {ins - ex} is not a multiple of total_stride={st}")
                fixed.pop("instance_size")
        for name in ("ratios", "scales"):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                fail(name, v, "must be a sequence of numbers")
            elif len(v) == 0:
                fail(name, v, "must be non-empty")
            elif not all(_is_real(r) and math.isfinite(float(r)) and float(r) > 0 for r in v):
                fail(name, v, "every value must be a finite number > 0")
            else:
                fixed[name] = tuple(float(r) for r in v)
        if self.box_strategy not in BOX_STRATEGIES:
            fail("box_strategy", self.box_strategy)
        if not isinstance(self.extra, dict):
            fail("extra", self.extra, "must be a dict")
        if bad:
            head = ("invalid TrackerConfig: " if len(bad) == 1 else
                    f"invalid TrackerConfig ({len(bad)} settings out of range):\n  ")
            raise ValueError(head + "\n  ".join(bad))
        for name, v in fixed.items():  # plain Python numbers (json-serialisable), tuples
            object.__setattr__(self, name, v)

    @property
    def score_size(self) -> int:
        """Side of the response map: (255 - 127) // 8 + 1 + 8 = 25 (released ``renew``)."""
        return (self.instance_size - self.exemplar_size) // self.total_stride + 1 + self.base_size

    @property
    def anchor_num(self) -> int:
        return len(self.ratios) * len(self.scales)

    def replace(self, **changes) -> "TrackerConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def davis(cls) -> "TrackerConfig":
        """``experiments/siammask_sharp/config_davis.json`` (SiamMask_DAVIS.pth, demo)."""
        return cls(name="davis", penalty_k=0.04, window_influence=0.40, lr=1.0, seg_thr=0.35)

    @classmethod
    def vot(cls) -> "TrackerConfig":
        """``experiments/siammask_sharp/config_vot.json`` (SiamMask_VOT.pth)."""
        return cls(name="vot", penalty_k=0.04, window_influence=0.42, lr=0.25, seg_thr=0.30)

    @classmethod
    def vot_ld(cls) -> "TrackerConfig":
        """``experiments/siammask_sharp/config_vot18.json`` (SiamMask_VOT_LD.pth; = pysot)."""
        return cls(name="vot-ld", penalty_k=0.10, window_influence=0.41, lr=0.32, seg_thr=0.15)

    @classmethod
    def base(cls) -> "TrackerConfig":
        """Released ``TrackerConfig`` defaults, used with the base model (63x63 masks)."""
        return cls(name="base", penalty_k=0.09, window_influence=0.39, lr=0.38, seg_thr=0.30)


TRACKER_PRESETS = ("davis", "vot", "vot-ld", "base")


def tracker_config(name: str) -> TrackerConfig:
    """The :class:`TrackerConfig` of a preset name (``davis``, ``vot``, ``vot-ld``, ``base``)."""
    table = {
        "davis": TrackerConfig.davis,
        "vot": TrackerConfig.vot,
        "vot-ld": TrackerConfig.vot_ld,
        "vot_ld": TrackerConfig.vot_ld,
        "base": TrackerConfig.base,
    }
    if name not in table:
        raise ValueError(f"unknown tracker preset {name!r}; expected one of {TRACKER_PRESETS}")
    return table[name]()
