"""Bridges from siammask-edu to other people's tools.

* :mod:`siammask_edu.integrations.vot_trax`: a TraX server so that the official VOT toolkit
  (``vot-toolkit``, the ``vot`` extra) runs our tracker (``python -m
  siammask_edu.integrations.vot_trax --checkpoint PATH``). See ``docs/vot_toolkit.md``.

Nothing here is imported by ``import siammask_edu``; each integration imports its optional
dependency when it runs.

See book/10_measuring.py.
"""

__all__ = ["vot_trax"]
