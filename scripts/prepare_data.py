"""Build the training data layout of ``configs/train_lite.json`` from the official archives.

A thin wrapper over :mod:`siammask_edu.data_get`, for data already downloaded and
extracted by hand. ``siammask-edu data get davis2016`` / ``data get coco128`` do the same
from the official URLs (download, checks, extraction, these steps) in one command.

Usage (from the checkout root)::

    python scripts/prepare_data.py davis-240p --davis DAVIS --out DAVIS   # 240p beside 480p
    python scripts/prepare_data.py coco-subset --coco COCO --out DATA/coco128

* ``davis-240p``: :func:`siammask_edu.data_get.davis_240p`: DAVIS-2016's train sequences
  (``ImageSets/2016/train.txt``) downscaled from 854x480 to 427x240, what the ``lite``
  preset trains on (``{"type": "davis", "resolution": "240p"}``).
* ``coco-subset``: :func:`siammask_edu.data_get.coco_subset`: the class-agnostic COCO
  subset ("coco128": the first ``--per-split`` images of each of ``--splits`` that hold a
  polygon instance).

Nothing is overwritten: an existing output file is an error. Outputs are written to a
temporary name and renamed (no half-written file under the final name). Exit status 2 with
one line on stderr on bad input.

See README.md, section Data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from siammask_edu.data_get import (  # noqa: F401  (re-exported: the script's API)
    SIZE_240P,
    coco_subset,
    davis_240p,
    davis_train_sequences,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("davis-240p", help="DAVIS-2016 train sequences at 240p")
    d.add_argument("--davis", required=True, help="DAVIS-2016 root (480p, from DAVIS-data.zip)")
    d.add_argument("--out", required=True, help="output dataset root, e.g. DATA/davis2016")
    c = sub.add_parser("coco-subset", help="a class-agnostic COCO subset")
    c.add_argument("--coco", required=True, help="COCO-2017 root")
    c.add_argument("--out", required=True, help="e.g. DATA/coco128")
    c.add_argument("--per-split", type=int, default=100)
    c.add_argument("--splits", nargs="+", default=["train2017", "val2017"])
    a = ap.parse_args(argv)
    try:
        if a.cmd == "davis-240p":
            r = davis_240p(Path(a.davis), Path(a.out))
        else:
            r = coco_subset(Path(a.coco), Path(a.out), a.per_split, tuple(a.splits))
    except (FileNotFoundError, FileExistsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{a.cmd}: {r} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
