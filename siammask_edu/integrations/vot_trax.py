"""The official VOT toolkit runs our tracker: a TraX server around :class:`~siammask_edu.Tracker`.

Run by the toolkit (``trackers.ini``, ``protocol = traxpython``)::

    python -m siammask_edu.integrations.vot_trax --checkpoint PATH [--config vot]

``--checkpoint lite`` takes the shipped SiamMask-Lite weights
(``Tracker.from_pretrained("lite")``) once they exist. The model is loaded **once**, before
the TraX handshake; the process then answers, over the TraX protocol (the ``vot-trax``
package's Python API, ``trax.server.Server``):

* ``initialize`` (the first frame, and again after every failure of the supervised
  experiment: the toolkit re-initialises in the same process): the region is read --
  a polygon of 4 corners goes through the released ``get_axis_aligned_bbox`` rule
  (:meth:`~siammask_edu.Tracker.init_polygon`), a rectangle is used as ``(x, y, w, h)``,
  another polygon or a mask gives its axis-aligned bounds -- and the server answers with
  the region it was given;
* ``frame``: :meth:`~siammask_edu.Tracker.track`; the answer is the rotated polygon of the
  tracker (4 corners, frame pixels) with the property ``confidence`` (the score), or the
  binary mask (offset 0, frame size) when the toolkit initialised with a mask (the
  VOT2020+ stacks) or ``--output mask`` is given.

The toolkit's own stack, workspace and the known differences between its numbers and
:mod:`siammask_edu.metrics.vot` are written down in ``docs/vot_toolkit.md``.

Needs the ``vot`` extra (``pip install "siammask-edu[vot]"``: ``vot-trax``; the toolkit
itself is ``vot-toolkit``).

See book/10_measuring.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np


def init_region(kind: str, values) -> tuple[str, np.ndarray]:
    """How a TraX initial region starts our tracker.

    Args:
        kind: ``"rectangle"`` (``values = (x, y, w, h)``), ``"polygon"`` (``values`` =
            ``(k, 2)`` points) or ``"mask"`` (``values = (mask (h, w), (ox, oy))``).
        values: see ``kind``.

    Returns:
        ``("polygon", 8 numbers)`` for a 4-corner polygon (to be passed to
        :meth:`~siammask_edu.Tracker.init_polygon`), else ``("box", (x, y, w, h))``: the
        rectangle itself, or the axis-aligned bounds of the points / of the mask's
        foreground pixels (pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``).

    Raises:
        ValueError: for an unknown kind, an empty mask or a degenerate region.

    See book/10_measuring.py.
    """
    if kind == "rectangle":
        box = np.asarray(values, np.float64).reshape(4)
        return "box", box
    if kind == "polygon":
        pts = np.asarray(values, np.float64).reshape(-1, 2)
        if len(pts) == 4:
            return "polygon", pts.ravel()
        (x1, y1), (x2, y2) = pts.min(0), pts.max(0)
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"degenerate polygon region: {pts.ravel().tolist()}")
        return "box", np.array([x1, y1, x2 - x1, y2 - y1])
    if kind == "mask":
        mask, (ox, oy) = values
        ys, xs = np.nonzero(np.asarray(mask))
        if ys.size == 0:
            raise ValueError("the initial mask is empty")
        x1, y1 = xs.min() + ox, ys.min() + oy
        return "box", np.array([x1, y1, xs.max() + ox + 1 - x1, ys.max() + oy + 1 - y1],
                               np.float64)
    raise ValueError(f"unknown region kind {kind!r}")


def _read_trax_region(region) -> tuple[str, object]:
    from trax.region import Region

    if region.type == Region.RECTANGLE:
        return "rectangle", region.bounds()
    if region.type == Region.POLYGON:
        return "polygon", [region.get(i) for i in range(region.size())]
    if region.type == Region.MASK:
        return "mask", (region.array(), region.offset())
    raise ValueError(f"unsupported TraX region type {region.type!r}")


def serve(tracker, output: str = "auto", log: bool = False) -> int:
    """The TraX server loop (returns when the client quits).

    Args:
        tracker: a :class:`~siammask_edu.Tracker` (RGB frames), model already loaded.
        output: ``"auto"`` (a mask if the client initialised with a mask, else the
            polygon), ``"polygon"`` or ``"mask"``.
        log: TraX protocol log on stdout.

    Returns:
        The number of frames tracked (initialisations not counted).

    See book/10_measuring.py.
    """
    from trax import TraxStatus
    from trax.image import Image
    from trax.region import Mask, Polygon, Region
    from trax.server import Server

    from ..io import read_image

    if output not in ("auto", "polygon", "mask"):
        raise ValueError(f"output must be 'auto', 'polygon' or 'mask', got {output!r}")
    tracked, want_mask = 0, output == "mask"
    formats = [Region.POLYGON, Region.MASK, Region.RECTANGLE]
    with Server(formats, [Image.PATH], tracker_name="siammask-edu",
                tracker_description="SiamMask (CVPR 2019), siammask-edu", log=log) as server:
        while True:
            req = server.wait()
            if req.type == TraxStatus.QUIT:
                break
            frame = read_image(req.image["color"].path())
            if req.type == TraxStatus.INITIALIZE or req.objects:
                region = req.objects[0][0]
                kind, values = _read_trax_region(region)
                if output == "auto":
                    want_mask = kind == "mask"
                how, v = init_region(kind, values)
                if how == "polygon":
                    tracker.init_polygon(frame, v)
                else:
                    tracker.init(frame, v)
                server.status([(region, {})])
                continue
            res = tracker.track(frame)
            if want_mask:
                out = Mask.create(res.mask.astype(np.uint8))
            else:
                out = Polygon.create([(float(x), float(y)) for x, y in res.polygon])
            server.status([(out, {"confidence": f"{res.score:.6f}"})])
            tracked += 1
    return tracked


def build_tracker(checkpoint: str, config: str = "vot", device: str = "cpu"):
    """Load the model once and wrap it in a :class:`~siammask_edu.Tracker`.

    Args:
        checkpoint: a checkpoint path, or ``"lite"`` for the shipped weights.
        config: tracker preset (``"vot"``: the released VOT hyper-parameters).
        device: torch device.

    See book/10_measuring.py.
    """
    from ..cli_eval import load_tracker

    return load_tracker(checkpoint, config, device)[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m siammask_edu.integrations.vot_trax --checkpoint PATH``.

    See book/10_measuring.py.
    """
    p = argparse.ArgumentParser(prog="python -m siammask_edu.integrations.vot_trax",
                                description="SiamMask TraX server for the VOT toolkit")
    p.add_argument("--checkpoint", required=True, help="checkpoint file, or 'lite'")
    p.add_argument("--config", default="vot", help="tracker preset (default: vot)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", choices=("auto", "polygon", "mask"), default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--log", action="store_true", help="TraX protocol log")
    args = p.parse_args(argv)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        import trax  # noqa: F401
    except ImportError:
        print("vot_trax: the 'vot-trax' package is missing: pip install 'siammask-edu[vot]'",
              file=sys.stderr)
        return 2
    tracker = build_tracker(args.checkpoint, args.config, args.device)
    serve(tracker, args.output, args.log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
