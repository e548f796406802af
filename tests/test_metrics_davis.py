"""DAVIS J/F against the official davis2017-evaluation numbers (fixtures/davis_metrics), and
the dataset-level protocol, readers/writers and error cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from siammask_edu.metrics import davis as D
from siammask_edu.testing import skip_missing_data

SEQS = ("blackswan", "car-shadow", "dog")
TOL = 1e-12


@pytest.fixture(scope="module")
def davis_fx(fixtures_dir):
    d = fixtures_dir / "davis_metrics"
    if not (d / "reference.json").is_file():
        skip_missing_data(f"DAVIS metric fixtures not available at {d}")
    return d


@pytest.fixture(scope="module")
def ref(davis_fx):
    return json.loads((davis_fx / "reference.json").read_text())


def _read_stack(folder):
    return [D.read_mask_png(p) == 255 for p in sorted(folder.glob("*.png"))]


@pytest.fixture(scope="module")
def per_frame(davis_fx, ref):
    """{(seq, set): (J, F)} computed from the shipped PNGs (GT = the ``gt`` set)."""
    out = {}
    for seq in SEQS:
        gts = _read_stack(davis_fx / "gt" / seq)
        for name in ref[seq]:
            preds = _read_stack(davis_fx / name / seq)
            assert len(preds) == len(gts) == ref[seq][name]["n_frames_total"]
            out[(seq, name)] = (
                np.array([D.jaccard(p, g) for p, g in zip(preds, gts)]),
                np.array([D.boundary_f(p, g) for p, g in zip(preds, gts)]),
            )
    return out


def test_fixture_covers_seven_sets(ref):
    assert {s for seq in SEQS for s in ref[seq]} == {
        "gt",
        "erode5",
        "dilate9",
        "shift12",
        "box",
        "empty_every5",
        "half",
    }


def test_per_frame_j_and_f_match_official(per_frame, ref):
    worst = {"J": 0.0, "F": 0.0}
    for (seq, name), (j, f) in per_frame.items():
        worst["J"] = max(worst["J"], np.abs(j - ref[seq][name]["J_per_frame"]).max())
        worst["F"] = max(worst["F"], np.abs(f - ref[seq][name]["F_per_frame"]).max())
    assert worst["J"] <= TOL and worst["F"] <= TOL, worst


def test_statistics_match_official(per_frame, ref):
    for (seq, name), (j, f) in per_frame.items():
        r = ref[seq][name]
        assert r["n_frames_used"] == len(j) - 2
        for m, v in (("J", j), ("F", f)):
            for key, vals in ((m, v[1:-1]), (f"{m}_all_frames", v)):
                got = D.db_statistics(vals)
                want = (r[key]["mean"], r[key]["recall"], r[key]["decay"])
                assert np.allclose(got, want, rtol=0, atol=TOL), (seq, name, key, got, want)
        jf = (D.db_statistics(j[1:-1])[0] + D.db_statistics(f[1:-1])[0]) / 2
        assert abs(jf - r["JF_mean"]) <= TOL


def test_empty_prediction_frames_give_zero(per_frame):
    j, f = per_frame[("dog", "empty_every5")]
    assert np.all(j[4::5] == 0) and np.all(f[4::5] == 0)
    assert np.all(per_frame[("dog", "gt")][0] == 1) and np.all(per_frame[("dog", "gt")][1] == 1)


def _gt_layout(tmp_path, davis_fx, seqs=SEQS):
    """A DAVIS layout whose Annotations/480p/<seq> are links to the fixture GT (no copies)."""
    anno = tmp_path / "gtroot" / "Annotations" / "480p"
    anno.mkdir(parents=True)
    for seq in seqs:
        (anno / seq).symlink_to(davis_fx / "gt" / seq, target_is_directory=True)
    return tmp_path / "gtroot"


def test_evaluate_davis_2016_matches_official_global(tmp_path, davis_fx, ref):
    root = _gt_layout(tmp_path, davis_fx)
    res = D.evaluate_davis(davis_fx / "empty_every5", root, year=2016)
    assert [r["sequence"] for r in res.per_object] == sorted(SEQS)
    for row in res.per_object:
        r = ref[row["sequence"]]["empty_every5"]
        assert row["Sequence"] == row["sequence"] + "_1" and row["n_frames"] == r["n_frames_used"]
        for m in "JF":
            for s in ("mean", "recall", "decay"):
                assert abs(row[f"{m}-{s.capitalize()}"] - r[m][s]) <= TOL
    want = ref["global_over_sequences"]["empty_every5"]
    for key, val in want.items():
        got = res.global_metrics[
            key.replace("mean", "Mean").replace("recall", "Recall").replace("decay", "Decay")
        ]
        assert abs(got - val) <= TOL, key
    out = tmp_path / "table.csv"
    D.write_csv(out, res.per_object)
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("Sequence,sequence,object")
    assert float(lines[1].split(",")[4]) == res.per_object[0]["J-Mean"]


def test_evaluate_davis_all_frames_option(tmp_path, davis_fx, ref):
    root = _gt_layout(tmp_path, davis_fx, ["car-shadow"])
    res = D.evaluate_davis(davis_fx / "half", root, sequences=["car-shadow"], exclude_last=False)
    j, f = res.per_frame[("car-shadow", 1)]
    r = ref["car-shadow"]["half"]
    assert np.abs(j - r["J_per_frame"][1:]).max() <= TOL
    assert np.abs(f - r["F_per_frame"][1:]).max() <= TOL
    assert res.per_object[0]["n_frames"] == r["n_frames_total"] - 1


def test_evaluate_davis_on_the_data_root(davis_fx):
    from siammask_edu.paths import data_root

    try:
        root = data_root()
    except FileNotFoundError as exc:
        skip_missing_data(f"no data root: {exc}")
    if not (root / "davis2016" / "Annotations" / "480p" / "blackswan").is_dir():
        skip_missing_data("DAVIS-2016 480p val sequences not in the data root")
    res = D.evaluate_davis(davis_fx / "gt", root, year=2016, sequences=["blackswan"])
    assert res.global_metrics["J-Mean"] == 1.0 and res.global_metrics["F-Mean"] == 1.0
    assert res.global_metrics["J&F-Mean"] == 1.0 and res.per_object[0]["n_frames"] == 48


# ---------------------------------------------------------------- synthetic datasets


def _synthetic(tmp_path, year=2016, n=6, size=(40, 64)):
    """GT and a prediction folder: 2 objects (2017) or one 0/255 object (2016)."""
    rng = np.random.default_rng(0)
    root, res = tmp_path / "data", tmp_path / "res"
    gts, preds = [], []
    for t in range(n):
        lab = np.zeros(size, np.uint8)
        lab[5 + t : 20 + t, 4:30] = 1
        if year == 2017:
            lab[22:35, 30 + t : 50 + t] = 2
            lab[0:3, 0:10] = 255  # void
        noise = rng.random(size) < 0.05
        pred = np.where(noise, 0, lab).astype(np.uint8)
        pred[pred == 255] = 0
        if year == 2017 and t % 2:
            pred[pred == 2] = 0  # object 2 missing on odd frames
        gts.append(lab)
        preds.append(pred)
        name = f"{t:05d}.png"
        if year == 2016:
            D.write_mask_png(root / "Annotations" / "480p" / "seqa" / name, lab * 255)
        else:
            D.write_mask_png(root / "Annotations" / "480p" / "seqa" / name, lab)
        D.write_mask_png(res / "seqa" / name, pred)
    (root / "ImageSets" / str(year)).mkdir(parents=True)
    (root / "ImageSets" / str(year) / "val.txt").write_text("seqa\n")
    return root, res, np.stack(gts), np.stack(preds)


def test_davis2017_per_object_with_void_and_missing_object(tmp_path):
    root, res, gt, pred = _synthetic(tmp_path, year=2017)
    out = D.evaluate_davis(res, root, year=2017)
    assert [r["Sequence"] for r in out.per_object] == ["seqa_1", "seqa_2"]
    gt = np.where(gt == 255, 0, gt)[1:-1]
    pred = pred[1:-1]
    for k, row in zip((1, 2), out.per_object):
        j = np.array([D.jaccard(p == k, g == k) for p, g in zip(pred, gt)])
        f = np.array([D.boundary_f(p == k, g == k) for p, g in zip(pred, gt)])
        assert np.array_equal(out.per_frame[("seqa", k)][0], j)
        assert np.array_equal(out.per_frame[("seqa", k)][1], f)
        assert row["J-Mean"] == D.db_statistics(j)[0] and row["F-Decay"] == D.db_statistics(f)[2]
    j2 = out.per_frame[("seqa", 2)][0]
    assert np.all(j2[0::2] == 0) and np.all(j2[1::2] > 0.5)  # frames 2, 4 (odd t) are empty
    g = out.global_metrics
    assert g["J-Mean"] == np.mean([r["J-Mean"] for r in out.per_object])
    assert g["J&F-Mean"] == (g["J-Mean"] + g["F-Mean"]) / 2
    assert list(g) == list(D.STAT_KEYS)


def test_davis2017_rejects_unknown_object_id(tmp_path):
    root, res, _, pred = _synthetic(tmp_path, year=2017)
    D.write_mask_png(res / "seqa" / "00002.png", np.full(pred.shape[1:], 3, np.uint8))
    with pytest.raises(ValueError, match="object id 3"):
        D.evaluate_davis(res, root, year=2017)


def test_davis2016_binarises(tmp_path):
    root, res, gt, pred = _synthetic(tmp_path, year=2016)
    out = D.evaluate_davis(res, root, year=2016)
    j = D.jaccard(pred[1:-1] > 0, gt[1:-1] > 0)
    assert np.array_equal(out.per_frame[("seqa", 1)][0], j)


def test_refuses_ground_truth_as_results(tmp_path):
    root, _, _, _ = _synthetic(tmp_path)
    with pytest.raises(ValueError, match="ground-truth folder"):
        D.evaluate_davis(root / "Annotations" / "480p", root)


def test_missing_results_listed_in_one_error(tmp_path):
    root, res, gt, _ = _synthetic(tmp_path)
    for t, lab in enumerate(gt):  # a second GT sequence without any result
        D.write_mask_png(root / "Annotations" / "480p" / "seqb" / f"{t:05d}.png", lab)
    (res / "seqa" / "00002.png").unlink()
    (res / "seqa" / "00003.png").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        D.evaluate_davis(res, root, sequences=["seqa", "seqb"])
    msg = str(exc.value)
    assert "3 missing" in msg and "seqa/00002.png" in msg and "seqa/00003.png" in msg
    assert "seqb/ (whole sequence)" in msg
    (res / "seqa" / "00000.png").unlink()  # frame 0 (given) and the last one are not needed
    (res / "seqa" / "00005.png").unlink()
    with pytest.raises(FileNotFoundError, match="2 missing"):
        D.evaluate_davis(res, root, sequences=["seqa"])


def test_rejects_result_of_other_size(tmp_path):
    root, res, _, _ = _synthetic(tmp_path)
    D.write_mask_png(res / "seqa" / "00001.png", np.zeros((20, 32), np.uint8))
    with pytest.raises(ValueError, match=r"32x20 \(WxH\) differs from the ground truth 64x40"):
        D.evaluate_davis(res, root)


def test_empty_dataset_raises(tmp_path):
    root, res, _, _ = _synthetic(tmp_path)
    with pytest.raises(ValueError, match="empty dataset"):
        D.evaluate_davis(res, root, sequences=[])
    with pytest.raises(ValueError, match="no frames to evaluate"):
        two = tmp_path / "two" / "Annotations" / "480p" / "seqa"
        for t in range(2):
            D.write_mask_png(two / f"{t:05d}.png", np.ones((4, 4), np.uint8))
        D.evaluate_davis(res, tmp_path / "two")
    with pytest.raises(ValueError, match="year"):
        D.evaluate_davis(res, root, year=2018)


# ---------------------------------------------------------------- building blocks


def test_jaccard_and_f_special_cases():
    z, o = np.zeros((10, 12), bool), np.zeros((10, 12), bool)
    o[2:6, 3:8] = True
    assert D.jaccard(z, z) == 1.0 and D.jaccard(z, o) == 0.0 and D.jaccard(o, o) == 1.0
    assert D.boundary_f(z, z) == 1.0  # neither has a boundary: P = R = 1
    assert D.boundary_f(z, o) == 0.0  # no predicted boundary: P = 1, R = 0
    assert D.boundary_f(o, z) == 0.0  # no GT boundary: P = 0, R = 1
    half = o.copy()
    half[:, 5:] = False
    assert D.jaccard(half, o) == (4 * 2) / (4 * 5)
    assert np.array_equal(D.jaccard(np.stack([z, o]), np.stack([z, z])), [1.0, 0.0])
    assert np.array_equal(D.boundary_f(np.stack([z, o]), np.stack([z, o])), [1.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        D.jaccard(z, o[:5])


def test_seg2bmap_by_hand():
    seg = np.zeros((4, 4), bool)
    seg[1:3, 1:3] = True
    want = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]], bool)
    assert np.array_equal(D.seg2bmap(seg), want)


def _seg2bmap_official(seg):
    # davis2017-evaluation ``_seg2bmap`` (same width/height), transcribed as the oracle
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def test_seg2bmap_equals_official_transcription():
    rng = np.random.default_rng(1)
    for shape in ((1, 1), (1, 5), (6, 1), (9, 13), (31, 17)):
        for p in (0.1, 0.5, 0.9):
            seg = rng.random(shape) < p
            assert np.array_equal(D.seg2bmap(seg), _seg2bmap_official(seg)), (shape, p)


def test_disk_matches_scikit_image():
    morph = pytest.importorskip("skimage.morphology")
    for r in (1, 2, 5, 8, 8.0, 13):
        assert np.array_equal(D.disk(r), morph.disk(r))
    assert np.ceil(0.008 * np.linalg.norm((480, 854))) == 8


def test_boundary_tolerance_in_pixels():
    a, b = np.zeros((60, 60), bool), np.zeros((60, 60), bool)
    a[10:40, 10:40], b[13:43, 10:40] = True, True  # 3-pixel vertical shift
    assert D.boundary_f(a, b, bound_th=3) == 1.0
    assert D.boundary_f(a, b, bound_th=2) < 1.0


def test_db_statistics_bins_and_recall():
    v = np.arange(48, dtype=float)
    mean, _, decay = D.db_statistics(v)
    assert mean == 23.5 and decay == np.mean(v[0:13]) - np.mean(v[35:48])
    assert D.db_statistics(np.array([0.5, 0.6, 0.4, 0.9]))[1] == 0.5  # strict > 0.5
    assert np.isnan(D.db_statistics(np.full(5, np.nan))[0])


def test_merge_objects_rule():
    p = np.zeros((2, 2, 3))
    p[0] = [[0.9, 0.2, 0.5], [0.1, 0.4, 0.6]]
    p[1] = [[0.8, 0.7, 0.3], [0.2, 0.39, 0.61]]
    assert np.array_equal(D.merge_objects(p, 0.5), [[1, 2, 0], [0, 0, 2]])
    assert D.merge_objects(p, 0.5).dtype == np.uint8
    with pytest.raises(ValueError):
        D.merge_objects(p[0], 0.5)


def test_palette_png_round_trip(tmp_path):
    from PIL import Image

    lab = np.zeros((5, 7), np.uint8)
    lab[1:3, 2:5], lab[4, :] = 2, 255
    D.write_mask_png(tmp_path / "a" / "00000.png", lab)
    with Image.open(tmp_path / "a" / "00000.png") as im:
        assert im.mode == "P"
        pal = np.array(im.getpalette()[:9]).reshape(3, 3)
    assert np.array_equal(pal, [[0, 0, 0], [128, 0, 0], [0, 128, 0]])
    assert np.array_equal(D.DAVIS_PALETTE[255], [224, 224, 192])
    assert np.array_equal(D.read_mask_png(tmp_path / "a" / "00000.png"), lab)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="mode 'RGB'"):
        D.read_mask_png(tmp_path / "rgb.png")
    with pytest.raises(ValueError):
        D.write_mask_png(tmp_path / "bad.png", np.full((2, 2), 300))
