"""Benchmark metrics exactly as DAVIS and VOT define them.

Use them with the module prefix: ``from siammask_edu.metrics import davis, vot`` then
``davis.evaluate_davis(...)``, ``vot.region_overlap(...)``, ``vot.eao(...)``.

See book/10_measuring.py.
"""

from . import davis, vot

__all__ = ["davis", "vot"]
