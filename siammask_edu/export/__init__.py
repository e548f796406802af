"""Inference exports: BatchNorm folding (:mod:`.fold`) and ONNX graphs with an onnxruntime
tracker backend (:mod:`.onnx`, needs ``pip install siammask-edu[export]``).

See book/11_speed.py.
"""

from .fold import fold_batchnorm, inference_model

__all__ = ["fold_batchnorm", "inference_model"]
