"""Pair sampling, crops and sources (DAVIS / COCO on the shared data, the custom layout)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from siammask_edu import datasets as D
from siammask_edu.paths import data_root


@pytest.fixture(scope="module")
def shared():
    from siammask_edu.paths import have_davis
    from siammask_edu.testing import skip_missing_data

    # DAVIS-2016 train at 240p and COCO-128: an empty data root is no data
    try:
        root = data_root()
    except FileNotFoundError as exc:
        skip_missing_data(f"no data root: {exc}")
    if not (have_davis("bear", resolution="240p") and (root / "coco128").is_dir()):
        skip_missing_data(f"DAVIS-2016 240p train sequences or coco128 not in {root}")
    return root


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return D.write_synthetic_sequences(tmp_path_factory.mktemp("synth"), 2, 6)


def test_davis_source_boxes_from_masks(shared):
    src = D.DavisSource(sequences=["bear"])
    (t,) = src.tracks
    assert t.name == "davis/bear" and len(t.frames) == len(t.boxes) == len(t.masks) > 50
    img = src.image(t.frames[0])
    m = src.mask(t, 0, img.shape[:2])
    assert img.shape == (240, 427, 3) and m.shape == (240, 427) and set(np.unique(m)) == {0, 1}
    np.testing.assert_array_equal(t.boxes[0], D.mask_box(m))


def test_davis_train_never_holds_val_sequences(shared):
    with pytest.raises(D.DataError, match="blackswan"):
        D.DavisSource(sequences=["bear", "blackswan"])
    lst = (shared / "davis2016" / "ImageSets" / "2016" / "train.txt").read_text().split()
    assert lst and not set(lst) & set(D.DAVIS2016_VAL)
    src = D.DavisSource(resolution="480p", sequences=["dog"], allow_val=True, in_memory=False)
    assert src.tracks[0].boxes.shape[1] == 4


def test_masks_at_another_resolution(synth, tmp_path):
    # a DAVIS layout whose annotations are stored at twice the frame resolution
    for seq in ("seq0",):
        fdir = tmp_path / "JPEGImages" / "low" / seq
        adir = tmp_path / "Annotations" / "high" / seq
        fdir.mkdir(parents=True)
        adir.mkdir(parents=True)
        for f in sorted((synth / seq / "frames").iterdir()):
            (fdir / f.name).write_bytes(f.read_bytes())
            m = cv2.imread(str(synth / seq / "masks" / (f.stem + ".png")), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(adir / (f.stem + ".png")),
                        cv2.resize(m, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
    src = D.DavisSource(tmp_path, resolution="low", mask_resolution="high", sequences=["seq0"])
    ref = D.CustomSource(synth).tracks[0].boxes
    assert np.abs(src.tracks[0].boxes - ref).max() <= 1


def test_coco_source(shared):
    src = D.CocoSource()
    assert len(src) == 951  # not crowd, >= 16 px a side, >= 1000 px^2
    t = src.tracks[0]
    img = src.image(t.frames[0])
    m = src.mask(t, 0, img.shape[:2])
    x, y, w, h = t.boxes[0]
    mx, my, mw, mh = D.mask_box(m)
    assert abs(mx - x) <= 2 and abs(my - y) <= 2 and abs(mw - w) <= 3 and abs(mh - h) <= 3


def test_custom_layout_and_errors(synth, tmp_path):
    src = D.CustomSource(synth, frame_range=2)
    assert len(src) == 2 and len(src.tracks[0].frames) == 6 and src.has_masks
    # VOT-style 8-number lines and an absent target
    seq = tmp_path / "ok" / "s"
    (seq / "color").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(seq / "color" / f"{i + 1:08d}.jpg"), np.zeros((40, 50, 3), np.uint8))
    (seq / "groundtruth.txt").write_text("1,2,11,2,11,12,1,12\nnan,nan,nan,nan\n3,4,5,6\n")
    t = D.CustomSource(tmp_path / "ok").tracks[0]
    np.testing.assert_array_equal(t.boxes, [[1, 2, 10, 10], [3, 4, 5, 6]])
    assert [f.name for f in t.frames] == ["00000001.jpg", "00000003.jpg"]
    (seq / "groundtruth.txt").write_text("1,2,3,4\n")
    with pytest.raises(D.DataError, match="1 lines for 3 frames"):
        D.CustomSource(tmp_path / "ok")


def test_startup_validation_names_the_bad_frame(synth, tmp_path):
    bad = tmp_path / "bad"
    for seq in synth.iterdir():
        dst = bad / seq.name
        for f in seq.rglob("*"):
            if f.is_file():
                (dst / f.relative_to(seq)).parent.mkdir(parents=True, exist_ok=True)
                (dst / f.relative_to(seq)).write_bytes(f.read_bytes())
    broken = bad / "seq1" / "frames" / "00003.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(D.DataError, match=str(broken).replace("\\", "\\\\")):
        D.PairDataset([D.CustomSource(bad, in_memory=False)])
    broken.unlink()  # a frame that disappears between listing and start-up validation
    (bad / "seq1" / "frames" / "00003.jpg").write_bytes(
        (synth / "seq1" / "frames" / "00003.jpg").read_bytes())
    src = D.CustomSource(bad, in_memory=False)
    gone = bad / "seq0" / "frames" / "00002.jpg"
    gone.unlink()
    with pytest.raises(D.DataError, match="seq0/frames/00002.jpg"):
        D.PairDataset([src])
    mask = bad / "seq1" / "masks" / "00001.png"
    gone.write_bytes((synth / "seq0" / "frames" / "00002.jpg").read_bytes())
    mask.unlink()
    with pytest.raises(D.DataError, match="cannot read mask .*00001.png"):
        D.PairDataset([D.CustomSource(bad, in_memory=False)])


def test_items_shapes_and_determinism(synth):
    ds = D.PairDataset([D.CustomSource(synth, 3)], D.PairConfig(), seed=7)
    a, b, c = ds[11], ds[11], ds[12]
    assert a["template"].shape == (3, 127, 127) and a["search"].shape == (3, 255, 255)
    assert a["label_cls"].shape == (5, 25, 25) and a["label_loc"].shape == (4, 5, 25, 25)
    assert a["mask_label"].shape == (1, 255, 255) and a["mask_weight"].shape == (25, 25)
    assert a["label_sim"].shape == (1, 25, 25) and a["template"].dtype == np.float32
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert not np.array_equal(a["search"], c["search"])
    other = D.PairDataset([D.CustomSource(synth, 3)], D.PairConfig(), seed=8)[11]
    assert not np.array_equal(a["search"], other["search"])


def test_dataloader_workers_give_identical_batches(synth):
    ds = D.PairDataset([D.CustomSource(synth, 3)], D.PairConfig(), seed=1)
    sampler = D.PairSampler(2, 4)
    batches = []
    for workers in (0, 2):
        dl = torch.utils.data.DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers,
                                         collate_fn=D.collate)
        batches.append(list(dl))
    for x, y in zip(*batches):
        assert torch.equal(x["search"], y["search"]) and torch.equal(x["index"], y["index"])


def test_sampler_shards_the_global_batch():
    full = list(D.PairSampler(2, 4, start_step=3))
    assert full == [12, 13, 14, 15, 16, 17, 18, 19]
    r0 = list(D.PairSampler(2, 4, 3, rank=0, world_size=2))
    r1 = list(D.PairSampler(2, 4, 3, rank=1, world_size=2))
    assert r0 == [12, 13, 16, 17] and r1 == [14, 15, 18, 19]
    with pytest.raises(ValueError):
        D.PairSampler(1, 3, world_size=2)


def test_crop_geometry_without_augmentation(synth):
    src = D.CustomSource(synth)
    t = src.tracks[0]
    img = src.image(t.frames[0])
    mask = src.mask(t, 0, img.shape[:2])
    rng = np.random.default_rng(0)
    crop, box, label = D.make_crop(img, t.boxes[0], 255, rng, D.Augment(), mask=mask)
    x, y, w, h = t.boxes[0]
    p = (w + h) / 2
    s_z = math.sqrt((w + p) * (h + p))
    k = 510 / (s_z * 511 / 127)  # frame -> crop scale (released crop511)
    np.testing.assert_allclose([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], [127, 127],
                               atol=1e-3)
    np.testing.assert_allclose([box[2] - box[0], box[3] - box[1]], [w * k, h * k], rtol=1e-5)
    ys, xs = np.nonzero(label[0] > 0)
    assert abs(xs.min() - box[0]) <= 2 and abs(xs.max() + 1 - box[2]) <= 2
    assert abs(ys.min() - box[1]) <= 2 and abs(ys.max() + 1 - box[3]) <= 2


def test_negative_and_gray_pairs(synth):
    neg = D.PairDataset([D.CustomSource(synth, 3)], D.PairConfig(neg=1.0, gray=1.0), seed=0)
    it = neg[3]
    assert it["negative"] and not it["has_mask"]
    assert (it["label_cls"] == 1).sum() == 0 and (it["label_cls"] == 0).sum() == 16
    assert it["mask_weight"].sum() == 0 and (it["label_sim"] == -1).all()
    # gray: channels differ only by the constant colour offset
    diff = it["template"][0] - it["template"][1]
    assert np.ptp(diff) < 1e-3


def test_refine_stage_pairs(synth):
    ds = D.PairDataset([D.CustomSource(synth, 3)], D.PairConfig.refine(), seed=0)
    assert ds.config.score_size == 3
    it = ds[0]
    assert it["search"].shape == (3, 143, 143) and it["label_cls"].shape == (5, 3, 3)
    assert it["mask_weight"].shape == (3, 3) and it["mask_weight"].sum() >= 1


def test_build_sources(synth, shared):
    srcs = D.build_sources([{"type": "custom", "root": str(synth)},
                            {"type": "davis", "sequences": ["boat"]}])
    assert [s.name for s in srcs] == ["custom", "davis"]
    assert "davis: 1 tracks" in D.describe(srcs)
    with pytest.raises(D.DataError, match="unknown source type"):
        D.build_sources([{"type": "kitti"}])


def _copy_tree(src, dst):
    for f in src.rglob("*"):
        if f.is_file():
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.relative_to(src)).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("in_memory", [True, False])
def test_validation_decodes_fully_and_lists_every_bad_file(synth, tmp_path, in_memory):
    # a JPEG truncated to 60 % decodes in OpenCV into a half-grey image without an error
    bad = _copy_tree(synth, tmp_path / "bad")
    cut = bad / "seq0" / "frames" / "00002.jpg"
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    junk = bad / "seq1" / "frames" / "00001.jpg"
    junk.write_bytes(b"not a jpeg")
    mask = bad / "seq1" / "masks" / "00004.png"
    mask.write_bytes(mask.read_bytes()[: mask.stat().st_size // 2])
    src = D.CustomSource(bad, in_memory=in_memory)
    with pytest.raises(D.DataError) as err:
        D.PairDataset([src])
    msg = str(err.value)
    for p in (cut, junk, mask):
        assert str(p) in msg, (p, msg)
    assert "3 " in msg.splitlines()[0] and "truncated" in msg
    assert not src._images or cut not in src._images  # nothing bad is cached
    # the good files are unaffected: a clean copy validates
    D.PairDataset([D.CustomSource(synth, in_memory=in_memory)])


def test_lazy_source_keeps_nothing_decoded_and_gives_the_same_items(synth):
    lazy = D.CustomSource(synth, 3, in_memory=False)
    a = D.PairDataset([lazy], D.PairConfig(), seed=5)
    b = D.PairDataset([D.CustomSource(synth, 3)], D.PairConfig(), seed=5)
    for i in (0, 7):
        for k, v in a[i].items():
            assert np.array_equal(v, b[i][k]), k
    assert lazy._images == {} and lazy._masks == {}
