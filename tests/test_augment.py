"""Recipe-v2 augmentations: labels consistent with pixels, determinism, off by default."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from siammask_edu import augment as A
from siammask_edu import datasets as D
from siammask_edu.targets import anchor_targets, box_iou_anchors, row_weights, siamfc_labels

ALL_ON = A.Variety(copy_paste=0.5, distractor=0.5, neg_same_class=0.5, scale=0.5,
                   motion_blur=0.5, occlusion=0.5)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return D.write_synthetic_sequences(tmp_path_factory.mktemp("synth"), 3, 6)


@pytest.fixture(scope="module")
def src(synth):
    return D.CustomSource(synth, frame_range=3)


def _ds(src, variety=None, seed=0, **kw):
    return D.PairDataset([src], D.PairConfig(variety=variety or A.Variety(), **kw), seed=seed)


def _frame(src, k=0, f=0):
    t = src.tracks[k]
    img = src.image(t.frames[f])
    return img, src.mask(t, f, img.shape[:2]), t.boxes[f]


# ---------------------------------------------------------------------------------------
# Off by default: the v1 items, bit for bit
# ---------------------------------------------------------------------------------------


def _v1_item(ds, index):
    """The v1 (released) recipe written out: the draws and calls of PairDataset before v2."""
    cfg = ds.config
    rng = np.random.default_rng((ds.seed, int(index)))
    s_, track = ds._pick(rng)
    negative = rng.random() < cfg.neg
    gray = rng.random() < cfg.gray
    t = int(rng.integers(len(track.frames)))
    if negative:
        s_src, s_track = ds._pick(rng)
        s = int(rng.integers(len(s_track.frames)))
    else:
        s_src, s_track = s_, track
        lo, hi = max(0, t - s_.frame_range), min(len(track.frames) - 1, t + s_.frame_range)
        s = int(rng.integers(lo, hi + 1))
    z_img, x_img = s_.image(track.frames[t]), s_src.image(s_track.frames[s])
    x_mask = None if negative else s_src.mask(s_track, s, x_img.shape[:2])
    z, _, _ = D.make_crop(z_img, track.boxes[t], 127, rng, cfg.template_aug, gray)
    x, box, label = D.make_crop(x_img, s_track.boxes[s], cfg.search_size, rng, cfg.search_aug,
                                gray, x_mask)
    labels, deltas, weights = anchor_targets(box, ds.anchors, rng, negative=negative)
    return {"template": z, "search": x, "box": box, "mask_label": label, "label_cls": labels,
            "label_loc": deltas, "label_loc_weight": weights}


def test_off_by_default_items_are_v1_bit_for_bit(src):
    assert not A.Variety().enabled and D.PairConfig().variety == A.Variety()
    ds = _ds(src, neg=0.3)
    # amplitudes without probabilities change nothing either
    ds2 = _ds(src, A.Variety(scale_max=3.0, same_class=1.0, blur_len=(9, 9)), neg=0.3)
    for i in range(24):
        want, got, got2 = _v1_item(ds, i), ds[i], ds2[i]
        for k, v in want.items():
            if v is None:
                continue
            assert np.array_equal(got[k], v), (i, k)
            assert np.array_equal(got2[k], v), (i, k)


def test_make_crop_with_variety_off_draws_the_same_numbers(src):
    img, mask, box = _frame(src)
    aug = D.Augment(shift=64, scale=0.18, blur=0.5)
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    a = D.make_crop(img, box, 255, r1, aug, mask=mask)
    b = D.make_crop(img, box, 255, r2, aug, mask=mask, variety=A.Variety())
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert r1.random() == r2.random()  # same number of draws


# ---------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------


def test_same_seed_and_index_same_arrays_with_everything_on(synth):
    a = _ds(D.CustomSource(synth, 3), ALL_ON, seed=4, neg=0.3)
    b = _ds(D.CustomSource(synth, 3, in_memory=False), ALL_ON, seed=4, neg=0.3)
    for i in (0, 7, 13, 7):  # 7 twice: nothing carried over between items
        x, y = a[i], b[i]
        for k in x:
            assert np.array_equal(x[k], y[k]), (i, k)
    assert not np.array_equal(a[3]["search"], a[4]["search"])
    assert not np.array_equal(a[3]["search"], _ds(D.CustomSource(synth, 3), ALL_ON, seed=5,
                                                  neg=0.3)[3]["search"])


# ---------------------------------------------------------------------------------------
# Strong scale / aspect
# ---------------------------------------------------------------------------------------


def test_strong_scale_box_and_mask_stay_consistent(src):
    _img, mask, box = _frame(src, 1, 2)
    v = A.Variety(scale=1.0, scale_max=3.0, aspect_max=2.0)
    M = D.crop_matrix(box, 255, np.random.default_rng(0), D.Augment())
    x, y, w, h = (float(t) for t in box)
    seen = set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        M2 = A.strong_scale(M, box, rng, v)
        rng = np.random.default_rng(seed)
        f = math.exp(rng.uniform(-math.log(3), math.log(3)))
        a = math.exp(rng.uniform(-math.log(2), math.log(2)))
        c = np.array([[x, y, 1], [x + w, y + h, 1]]) @ M2.T
        c0 = np.array([[x, y, 1], [x + w, y + h, 1]]) @ M.T
        bw, bh = c[1] - c[0]
        bw0, bh0 = c0[1] - c0[0]
        assert bw / bw0 == pytest.approx(f * math.sqrt(a)) and bh / bh0 == pytest.approx(
            f / math.sqrt(a))
        np.testing.assert_allclose(c.mean(0), c0.mean(0), atol=1e-6)  # centre kept
        wm = cv2.warpAffine(mask.astype(np.float32), M2, (255, 255), flags=cv2.INTER_LINEAR)
        mb = D.mask_box(wm > 0.5)
        if mb is None or c.min() < 0 or c.max() > 254:
            continue
        seen.add(seed)
        # cv2 puts pixel centres on integers: mask pixels x..x+w-1 span [x-0.5, x+w-0.5]
        # in the frame, and mask_box's (min, max+1) lies half a crop pixel after that
        e = np.array([[x - 0.5, y - 0.5, 1], [x + w - 0.5, y + h - 0.5, 1]]) @ M2.T + 0.5
        np.testing.assert_allclose([mb[0], mb[1], mb[0] + mb[2], mb[1] + mb[3]],
                                   e.reshape(-1), atol=1.0)
    assert len(seen) >= 6


def test_dataset_strong_scale_labels_follow_the_box(src):
    plain = _ds(src, neg=0.0, gray=0.0)
    ds = _ds(src, A.Variety(scale=1.0, scale_max=1.6, aspect_max=1.5), neg=0.0, gray=0.0)
    sides, sides0 = [], []
    min_w = min(float(t.boxes[:, 2].min()) for t in src.tracks)
    min_h = min(float(t.boxes[:, 3].min()) for t in src.tracks)
    for i in range(30):
        it = ds[i]
        b = it["box"]
        # the label box of the scaled mask equals the target box (the ellipse touches it),
        # up to the half frame pixel of the pixel-centre convention (see the test above)
        # magnified to the crop (known since v1: make_crop's box uses pixel corners)
        mb = D.mask_box(it["mask_label"][0] > 0)
        mag = max((b[2] - b[0]) / min_w, (b[3] - b[1]) / min_h)
        if 1 <= b.min() and b.max() <= 253:
            np.testing.assert_allclose([mb[0], mb[1], mb[0] + mb[2], mb[1] + mb[3]], b,
                                       atol=1.0 + 0.5 * mag)
        # anchor targets come from that box, and a draw without a positive anchor is redrawn
        assert box_iou_anchors(ds.anchors, b).max() >= 0.6
        assert (it["label_cls"] == 1).sum() >= 1
        np.testing.assert_array_equal(it["mask_weight"], row_weights(it["label_cls"]))
        sim = siamfc_labels(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), 25, 255)
        np.testing.assert_array_equal(it["label_sim"], sim)
        sides.append(math.log((b[2] - b[0]) / (b[3] - b[1])))
        b0 = plain[i]["box"]
        sides0.append(math.log((b0[2] - b0[0]) / (b0[3] - b0[1])))
    # aspect really changes more than with the released jitter alone
    assert np.std(sides) > 1.5 * np.std(sides0)


# ---------------------------------------------------------------------------------------
# Copy-paste, distractors
# ---------------------------------------------------------------------------------------


def _positive_pairs_equal_labels(a, b, n=16):
    """Box and mask label identical item by item; searches differ for some."""
    differ = 0
    for i in range(n):
        x, y = a[i], b[i]
        assert np.array_equal(x["box"], y["box"]), i
        assert np.array_equal(x["mask_label"], y["mask_label"]), i
        # (label_cls differs: its subsampling draws after the crops; the deltas do not)
        assert np.array_equal(x["label_loc"], y["label_loc"]), i
        differ += not np.array_equal(x["search"], y["search"])
    return differ


def test_copy_paste_keeps_labels_changes_background(src):
    base = _ds(src, neg=0.0)
    cp = _ds(src, A.Variety(copy_paste=1.0), neg=0.0)
    assert _positive_pairs_equal_labels(base, cp) == 16
    # pixels: the target where the mask is 1, the other frame where it is 0
    img, mask, box = _frame(src, 0, 1)
    bg, _, _ = _frame(src, 2, 3)
    M = D.crop_matrix(box, 255, np.random.default_rng(0), D.Augment())
    crop = cv2.warpAffine(img, M, (255, 255))
    wm = cv2.warpAffine(mask.astype(np.float32), M, (255, 255))
    out = A.paste_on_background(crop, wm, bg, np.random.default_rng(1))
    inside, outside = wm >= 1.0, wm <= 0.0
    np.testing.assert_allclose(out[inside], crop[inside], atol=1e-4)
    assert np.abs(out[outside] - crop[outside]).mean() > 5


def test_distractor_is_behind_the_target_and_labels_unchanged(src):
    base = _ds(src, neg=0.0)
    dis = _ds(src, A.Variety(distractor=1.0), neg=0.0)
    assert _positive_pairs_equal_labels(base, dis) >= 14
    img, mask, box = _frame(src, 0, 1)
    M = D.crop_matrix(box, 255, np.random.default_rng(0), D.Augment())
    crop = cv2.warpAffine(img, M, (255, 255)).astype(np.float32)
    wm = cv2.warpAffine(mask.astype(np.float32), M, (255, 255))
    c = np.array([[box[0], box[1], 1], [box[0] + box[2], box[1] + box[3], 1]]) @ M.T
    oimg, omask, obox = _frame(src, 1, 0)
    v = A.Variety(distractor=1.0, distractor_dist=(1.0, 1.0), distractor_size=(1.0, 1.0))
    out = A.paste_distractor(crop, wm, c.reshape(-1), A.PasteObject(oimg, omask, obox),
                             np.random.default_rng(3), v)
    np.testing.assert_allclose(out[wm >= 1.0], crop[wm >= 1.0], atol=1e-4)  # target in front
    changed = np.abs(out - crop).max(axis=2) > 1
    assert changed.sum() > 500  # an object of about the target's size was pasted


def test_same_class_distractors_and_semantic_negatives(synth):
    src = D.CustomSource(synth, 3)
    for t, cat in zip(src.tracks, (5, 5, 9)):
        t.category = cat
    ds = _ds(src, A.Variety(distractor=1.0, same_class=1.0, neg_same_class=1.0))
    rng = np.random.default_rng(0)
    for _ in range(10):
        s, t = ds._same_class(rng, src.tracks[0])
        assert t is src.tracks[1]  # the other track of category 5, never itself
        obj = ds._object(rng, src.tracks[1], True)
        assert any(obj.image is s.image(p) for p in src.tracks[0].frames)
    assert ds._same_class(rng, src.tracks[2]) is None  # no other track of category 9
    assert ds._object(rng, src.tracks[2], True) is not None  # falls back to any other track
    # the negative pairs: labels of a negative, search from the same category
    it = _ds(src, A.Variety(neg_same_class=1.0), neg=1.0)[0]
    assert it["negative"] and (it["label_cls"] == 1).sum() == 0


def test_coco_and_davis_tracks_carry_categories():
    from siammask_edu.paths import data_root
    from siammask_edu.testing import skip_missing_data

    try:
        root = data_root()
    except FileNotFoundError as exc:
        skip_missing_data(f"no data root: {exc}")
    if not (root / "coco128").is_dir() or not (root / "davis2016").is_dir():
        skip_missing_data(f"coco128 / davis2016 not in the data root {root}")
    coco = D.CocoSource()
    cats = {t.category for t in coco.tracks}
    assert None not in cats and 1 in cats and len(cats) > 20  # coco_category_id, not 1
    davis = D.DavisSource(sequences=["bear", "bmx-bumps"])
    assert [t.category for t in davis.tracks] == [23, None]
    assert not set(D.DAVIS2016_TRAIN_CATEGORY) & set(D.DAVIS2016_VAL)


# ---------------------------------------------------------------------------------------
# Occlusion, motion blur
# ---------------------------------------------------------------------------------------


def test_occluded_pixels_are_excluded_from_the_mask_label(src):
    img, mask, box = _frame(src, 0, 2)
    M = D.crop_matrix(box, 255, np.random.default_rng(0), D.Augment())
    crop = cv2.warpAffine(img, M, (255, 255)).astype(np.float32)
    wm = cv2.warpAffine(mask.astype(np.float32), M, (255, 255))
    c = (np.array([[box[0], box[1], 1], [box[0] + box[2], box[1] + box[3], 1]]) @ M.T).reshape(-1)
    source, _, _ = _frame(src, 1, 4)
    v = A.Variety(occlusion=1.0, occluder_object=0.0, min_visible=0.0)
    applied = 0
    for seed in range(8):
        out, vis, b, ok = A.occlude(crop, wm, c, source, None, np.random.default_rng(seed), v)
        assert ok
        applied += 1
        covered = np.abs(out - crop).max(axis=2) > 1e-3
        covered |= (vis < wm - 1e-6)
        # every covered pixel is background in the label; the rest of the mask is kept
        assert not (vis[covered] > 0.5).any()
        np.testing.assert_array_equal(vis[~covered], wm[~covered])
        assert (wm[covered] > 0.5).sum() > 0  # it covered part of the target
        np.testing.assert_array_equal(b, c.astype(np.float32))  # box: full extent
    assert applied == 8
    # an occluder that would hide too much is not applied
    strict = dataclasses.replace(v, min_visible=1.0)
    out, vis, b, ok = A.occlude(crop, wm, c, source, None, np.random.default_rng(0), strict)
    assert not ok and out is crop and vis is wm


def test_dataset_occlusion_label_is_a_subset(src):
    base = _ds(src, neg=0.0)
    occ = _ds(src, A.Variety(occlusion=1.0), neg=0.0)
    smaller = 0
    for i in range(16):
        x, y = base[i], occ[i]
        assert np.array_equal(x["box"], y["box"]) and np.array_equal(x["label_loc"],
                                                                      y["label_loc"])
        before, after = x["mask_label"][0] > 0, y["mask_label"][0] > 0
        assert not (after & ~before).any()
        smaller += after.sum() < before.sum()
    assert smaller >= 12


def test_motion_blur_leaves_labels_unchanged(src):
    base = _ds(src, neg=0.0)
    mb = _ds(src, A.Variety(motion_blur=1.0), neg=0.0)
    assert _positive_pairs_equal_labels(base, mb) == 16
    v = A.Variety(blur_len=(9, 9))
    for seed in range(5):
        k = A.motion_kernel(np.random.default_rng(seed), v)
        assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0, abs=1e-5)
        # a line through the centre: symmetric under a half turn (centroid = centre: the
        # object does not move against its label), no mass in most cells
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-6)
        yy, xx = np.mgrid[:9, :9]
        assert (k * xx).sum() == pytest.approx(4) and (k * yy).sum() == pytest.approx(4)
        assert (k > 1e-6).sum() < 20
    # a horizontal kernel blurs along x only
    img = np.zeros((31, 31, 3), np.float32)
    img[15, 15] = 255
    rng = np.random.default_rng(0)
    for _ in range(1000):  # draw until a vertical kernel comes (about 1 in 10)
        state = rng.bit_generator.state
        k = A.motion_kernel(rng, v)
        if np.allclose(k.sum(axis=0)[4], k.sum(), atol=1e-6):  # vertical line
            rng.bit_generator.state = state
            out = A.motion_blur(img, rng, v)
            assert (out[:, 15, 0] > 0).sum() >= 7 and (out[15, :, 0] > 0).sum() <= 3
            break
    else:
        pytest.fail("no vertical kernel in 1000 draws")


def test_variety_from_dict_rejects_unknown_keys():
    v = A.Variety.from_dict({"scale": 0.3, "blur_len": [3, 7]})
    assert v.scale == 0.3 and v.blur_len == (3, 7) and v.enabled
    with pytest.raises(ValueError, match="copypaste"):
        A.Variety.from_dict({"copypaste": 0.5})


def test_pool_needs_two_masked_tracks(synth, tmp_path):
    one = tmp_path / "one"
    (one / "seq0").mkdir(parents=True)
    for p in (synth / "seq0").rglob("*"):
        if p.is_file():
            (one / "seq0" / p.relative_to(synth / "seq0")).parent.mkdir(parents=True,
                                                                         exist_ok=True)
            (one / "seq0" / p.relative_to(synth / "seq0")).write_bytes(p.read_bytes())
    with pytest.raises(D.DataError, match="two tracks"):
        _ds(D.CustomSource(one), A.Variety(copy_paste=0.5))
    _ds(D.CustomSource(one), A.Variety(motion_blur=0.5, scale=0.5))[0]  # no pool needed
