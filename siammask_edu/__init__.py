"""siammask-edu: SiamMask (Wang et al., CVPR 2019), taught and implemented.

Public names: :class:`Tracker`, :class:`TrackResult`, :func:`build_model`,
:class:`SiamMask`, :class:`ModelConfig`, :class:`TrackerConfig`,
:func:`load_released_checkpoint`, :func:`load_checkpoint`, :func:`save_checkpoint`,
:func:`data_root`, :func:`load_sample`, :func:`fit_box`. Modules are imported with their
prefix: ``from siammask_edu import ops, geometry, boxes, viz``.
"""

from .boxes import fit_box
from .checkpoint import load_checkpoint, load_released_checkpoint, save_checkpoint
from .config import ModelConfig, TrackerConfig, fast_mode, model_config, tracker_config
from .data import load_sample
from .models import SiamMask, build_model, count_parameters
from .multi import MultiTracker
from .paths import data_root
from .tracker import Tracker, TrackResult

__version__ = "0.1.0"

__all__ = [
    "Tracker", "TrackResult", "MultiTracker", "ModelConfig", "TrackerConfig", "SiamMask", "build_model",
    "count_parameters", "load_released_checkpoint", "load_checkpoint", "save_checkpoint",
    "data_root", "load_sample", "fit_box", "fast_mode", "model_config", "tracker_config",
    "__version__",
]
