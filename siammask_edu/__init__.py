"""siammask-edu: SiamMask (Wang et al., CVPR 2019), taught and implemented.

Public names: :func:`build_model`, :class:`SiamMask`, :class:`ModelConfig`,
:class:`TrackerConfig`, :func:`load_released_checkpoint`, :func:`load_checkpoint`,
:func:`save_checkpoint`, :func:`data_root`.
"""

from .checkpoint import load_checkpoint, load_released_checkpoint, save_checkpoint
from .config import ModelConfig, TrackerConfig, fast_mode, model_config, tracker_config
from .models import SiamMask, build_model, count_parameters
from .paths import data_root

__version__ = "0.1.0"

__all__ = [
    "ModelConfig", "TrackerConfig", "SiamMask", "build_model", "count_parameters",
    "load_released_checkpoint", "load_checkpoint", "save_checkpoint", "data_root",
    "fast_mode", "model_config", "tracker_config", "__version__",
]
