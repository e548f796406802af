"""scripts/prepare_data.py: the 240p DAVIS train layout and the class-agnostic COCO subset,
built from tiny official-layout folders, then read by the training data sources."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prep():
    spec = importlib.util.spec_from_file_location("prepare_data",
                                                  ROOT / "scripts" / "prepare_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _davis(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("bear", "boat", "dog"):
        for k in range(3):
            img = rng.integers(0, 256, (480, 854, 3), dtype=np.uint8)
            mask = np.zeros((480, 854), np.uint8)
            mask[100 + 10 * k:300, 200:500] = 255
            (root / "JPEGImages" / "480p" / name).mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / "480p" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "JPEGImages" / "480p" / name / f"{k:05d}.jpg"), img)
            cv2.imwrite(str(root / "Annotations" / "480p" / name / f"{k:05d}.png"), mask)
    sets = root / "ImageSets" / "2016"
    sets.mkdir(parents=True)
    lines = [f"/JPEGImages/480p/{n}/{k:05d}.jpg /Annotations/480p/{n}/{k:05d}.png"
             for n in ("bear", "boat") for k in range(3)]
    (sets / "train.txt").write_text("\n".join(lines) + "\n")
    (sets / "val.txt").write_text("/JPEGImages/480p/dog/00000.jpg /Annotations/480p/dog/00000.png\n")
    return root


def test_davis_240p_converts_train_sequences_only(prep, tmp_path):
    davis = _davis(tmp_path / "DAVIS")
    r = prep.davis_240p(davis, davis)  # 240p beside the 480p folders
    assert r == {"sequences": 2, "frames": 6}
    f = cv2.imread(str(davis / "JPEGImages" / "240p" / "bear" / "00001.jpg"))
    m = cv2.imread(str(davis / "Annotations" / "240p" / "boat" / "00002.png"), 0)
    assert f.shape == (240, 427, 3) and m.shape == (240, 427)
    assert set(np.unique(m)) == {0, 255} and m[60:140, 110:240].all() and not m[:40].any()
    assert not (davis / "JPEGImages" / "240p" / "dog").exists()  # val: never converted
    assert not list(davis.rglob("*.tmp.*"))
    with pytest.raises(FileExistsError, match="not overwriting"):
        prep.davis_240p(davis, davis)
    # the result is a dataset root the training sources read
    from siammask_edu.datasets import build_sources

    (src,) = build_sources([{"type": "davis", "resolution": "240p", "root": str(davis)}])
    assert [len(t.frames) for t in src.tracks] == [3, 3]


def test_davis_240p_names_a_missing_mask(prep, tmp_path):
    davis = _davis(tmp_path / "DAVIS")
    (davis / "Annotations" / "480p" / "boat" / "00001.png").unlink()
    with pytest.raises(FileNotFoundError, match="boat/00001.png"):
        prep.davis_240p(davis, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="train.txt"):
        prep.davis_240p(tmp_path / "nowhere", tmp_path / "out2")


def _coco(root: Path) -> Path:
    (root / "annotations").mkdir(parents=True)
    for split, ids in (("train2017", [30, 9, 25, 40]), ("val2017", [139, 285])):
        (root / split).mkdir()
        images, anns = [], []
        for i in ids:
            name = f"{i:012d}.jpg"
            cv2.imwrite(str(root / split / name), np.full((240, 320, 3), i % 255, np.uint8))
            images.append({"id": i, "file_name": name, "width": 320, "height": 240})
            poly = [[20, 20, 200, 20, 200, 160, 20, 160]]
            anns.append({"id": 10 * i, "image_id": i, "category_id": 18, "iscrowd": 0,
                         "segmentation": poly, "area": 25200.0, "bbox": [20, 20, 180, 140]})
            if i == 25:  # only a crowd RLE instance: not usable
                anns[-1].update(iscrowd=1, segmentation={"counts": [0, 10], "size": [240, 320]})
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "licenses": [],
                        "categories": [{"id": 18, "name": "dog"}]}))
    return root


def test_coco_subset_takes_the_first_images_with_polygons(prep, tmp_path):
    coco = _coco(tmp_path / "COCO")
    out = tmp_path / "coco128"
    r = prep.coco_subset(coco, out, per_split=2)
    assert r == {"images": 4, "annotations": 4}
    doc = json.loads((out / "annotations" / "instances.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == [
        "train2017/000000000009.jpg", "train2017/000000000030.jpg",
        "val2017/000000000139.jpg", "val2017/000000000285.jpg"]  # 25: crowd only, skipped
    assert {a["category_id"] for a in doc["annotations"]} == {1}
    assert {a["coco_category_id"] for a in doc["annotations"]} == {18}
    assert all((out / "images" / im["file_name"]).is_file() for im in doc["images"])
    with pytest.raises(FileExistsError):
        prep.coco_subset(coco, out, per_split=2)
    with pytest.raises(ValueError, match="only 3 images"):
        prep.coco_subset(coco, tmp_path / "x", per_split=4)
    from siammask_edu.datasets import build_sources

    (src,) = build_sources([{"type": "coco", "root": str(out)}])
    assert len(src.tracks) == 4
