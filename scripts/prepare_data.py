"""Build the training data layout of ``configs/train_lite.json`` from the official archives.

Usage (from the checkout root)::

    python scripts/prepare_data.py davis-240p --davis DAVIS --out DAVIS   # 240p beside 480p
    python scripts/prepare_data.py coco-subset --coco COCO --out DATA/coco128

* ``davis-240p``: DAVIS-2016's ``DAVIS-data.zip`` holds 480p frames and masks only; the
  ``lite`` preset trains on ``240p`` (``{"type": "davis", "resolution": "240p"}``). Every
  sequence of ``ImageSets/2016/train.txt`` is downscaled from 854x480 to 427x240: frames
  with ``cv2.INTER_AREA`` written as JPEG quality 85, masks with ``cv2.INTER_NEAREST``
  written as 0/255 PNGs (the recipe of the project's development data). Validation
  sequences are not converted: they are evaluated at 480p and never trained on.
  ``ImageSets/`` is copied so that the folder is a complete dataset root.
* ``coco-subset``: the class-agnostic COCO subset the project trains on ("coco128"):
  from each of ``--splits`` (default ``train2017 val2017``) the first ``--per-split``
  (default 100) images by id that hold at least one non-crowd instance with a polygon
  mask, with those instances (``category_id`` 1, the original class kept in
  ``coco_category_id``; ``file_name`` relative to ``images/``), and the images copied to
  ``images/<split>/``. This is the rule of the project's development subset (200 images,
  1458 instances).

Nothing is overwritten: an existing output file is an error. Outputs are written to a
temporary name and renamed (no half-written file under the final name).

See README.md, section Data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

SIZE_240P = (427, 240)  # (width, height) of 854x480 halved, as DAVIS's own 240p would be


def _write_image(path: Path, img: np.ndarray, params=()) -> None:
    if path.exists():
        raise FileExistsError(f"{path} exists: not overwriting")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), img, list(params)):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)


def davis_train_sequences(davis: Path) -> list[str]:
    """Sequence names of ``ImageSets/2016/train.txt`` (lines ``/JPEGImages/480p/bear/00000.jpg
    /Annotations/480p/bear/00000.png`` or bare names)."""
    lst = davis / "ImageSets" / "2016" / "train.txt"
    if not lst.is_file():
        raise FileNotFoundError(f"{lst} not found: --davis must be the DAVIS-2016 root "
                                "(the folder holding JPEGImages/, Annotations/, ImageSets/)")
    names = []
    for line in lst.read_text().splitlines():
        tok = line.split()[0].strip("/") if line.strip() else ""
        if tok:
            parts = tok.split("/")
            names.append(parts[-2] if len(parts) > 1 else parts[0])
    return list(dict.fromkeys(names))


def davis_240p(davis: Path, out: Path, size: tuple[int, int] = SIZE_240P) -> dict:
    """Downscale the DAVIS-2016 train sequences of ``davis`` (480p) into ``out`` (240p).

    Returns:
        dict: ``sequences`` and ``frames`` converted.

    Raises:
        FileNotFoundError: a missing list, sequence folder, frame or mask (named).
        FileExistsError: an output file that exists already.
    """
    davis, out = Path(davis), Path(out)
    names = davis_train_sequences(davis)
    n = 0
    for name in names:
        src_f = davis / "JPEGImages" / "480p" / name
        src_a = davis / "Annotations" / "480p" / name
        frames = sorted(src_f.glob("*.jpg"))
        if not frames:
            raise FileNotFoundError(f"no frames in {src_f}")
        for fp in frames:
            ap = src_a / (fp.stem + ".png")
            img = cv2.imread(str(fp), cv2.IMREAD_COLOR)
            mask = cv2.imread(str(ap), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FileNotFoundError(f"unreadable or missing frame {fp}")
            if mask is None:
                raise FileNotFoundError(f"unreadable or missing mask {ap}")
            small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
            _write_image(out / "JPEGImages" / "240p" / name / fp.name, small,
                         (cv2.IMWRITE_JPEG_QUALITY, 85))
            _write_image(out / "Annotations" / "240p" / name / ap.name,
                         np.where(small_mask > 0, 255, 0).astype(np.uint8))
            n += 1
    sets = out / "ImageSets" / "2016"
    sets.mkdir(parents=True, exist_ok=True)
    for f in (davis / "ImageSets" / "2016").glob("*.txt"):
        if not (sets / f.name).exists():
            shutil.copyfile(f, sets / f.name)
    return {"sequences": len(names), "frames": n}


def coco_subset(coco: Path, out: Path, per_split: int = 100,
                splits: tuple[str, ...] = ("train2017", "val2017")) -> dict:
    """Write a class-agnostic COCO subset (see the module docstring).

    Returns:
        dict: ``images`` and ``annotations`` written.

    Raises:
        FileNotFoundError: an annotation file, image folder or listed image is missing.
        FileExistsError: ``out/annotations/instances.json`` exists.
        ValueError: a split with fewer than ``per_split`` usable images.
    """
    coco, out = Path(coco), Path(out)
    dst_json = out / "annotations" / "instances.json"
    if dst_json.exists():
        raise FileExistsError(f"{dst_json} exists: not overwriting")
    new_images, anns, licenses = [], [], []
    for split in splits:
        ann_file = coco / "annotations" / f"instances_{split}.json"
        if not ann_file.is_file():
            raise FileNotFoundError(f"{ann_file} not found: --coco must be the COCO-2017 root "
                                    "(annotations/instances_<split>.json and <split>/ or "
                                    "images/<split>/)")
        img_dir = next((d for d in (coco / split, coco / "images" / split) if d.is_dir()), None)
        if img_dir is None:
            raise FileNotFoundError(f"no image folder {coco / split} or {coco / 'images' / split}")
        src = json.loads(ann_file.read_text())
        licenses = licenses or src.get("licenses", [])
        polygons: dict[int, list] = {}  # non-crowd instances with polygon masks, per image
        for a in src["annotations"]:
            if not a.get("iscrowd", 0) and isinstance(a.get("segmentation"), list) \
                    and a["segmentation"]:
                polygons.setdefault(a["image_id"], []).append(a)
        chosen = sorted((im for im in src["images"] if im["id"] in polygons),
                        key=lambda im: im["id"])[:per_split]
        if len(chosen) < per_split:
            raise ValueError(f"only {len(chosen)} images with polygon instances in {ann_file}, "
                             f"asked for {per_split}")
        for im in chosen:
            s = img_dir / im["file_name"]
            if not s.is_file():
                raise FileNotFoundError(f"image {s} listed in {ann_file} is missing")
            d = out / "images" / split / im["file_name"]
            d.parent.mkdir(parents=True, exist_ok=True)
            if not d.exists():
                shutil.copyfile(s, d)
            new_images.append({"id": im["id"], "file_name": f"{split}/{im['file_name']}",
                               "width": im["width"], "height": im["height"]})
            anns += [{**a, "category_id": 1, "coco_category_id": a["category_id"]}
                     for a in sorted(polygons[im["id"]], key=lambda a: a["id"])]
    doc = {"info": {"description": f"COCO 2017 subset (first {per_split} images of "
                                   f"{' and '.join(splits)} with instance polygons), "
                                   "class-agnostic (scripts/prepare_data.py)",
                    "license": "COCO annotations CC BY 4.0; images keep their Flickr licences"},
           "licenses": licenses, "images": new_images, "annotations": anns,
           "categories": [{"id": 1, "name": "object"}]}
    dst_json.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, dst_json)
    return {"images": len(new_images), "annotations": len(anns)}


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
