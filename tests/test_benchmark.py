"""``siammask-edu benchmark davis|vot`` on a few frames with a tiny random model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from siammask_edu import build_model, save_checkpoint
from siammask_edu.cli import main
from siammask_edu.metrics import davis, vot


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(5)
    return save_checkpoint(build_model("tiny"), tmp_path_factory.mktemp("ck") / "tiny.pth")


@pytest.fixture(scope="module")
def root():
    from siammask_edu.paths import data_root, have_davis, have_vot
    from siammask_edu.testing import skip_missing_data

    # the tests read DAVIS-2016 blackswan and VOT bag: an empty data root is no data
    if not (have_davis("blackswan") and have_vot("bag")):
        skip_missing_data("DAVIS-2016 blackswan and VOT bag are not in the data root")
    return data_root()


def test_benchmark_davis_writes_and_evaluates(tiny_ckpt, root, tmp_path):
    out = tmp_path / "d"
    rc = main(["benchmark", "davis", "--model", str(tiny_ckpt), "--out", str(out),
               "--sequences", "blackswan", "--max-frames", "4", "--quiet"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    pngs = sorted((out / "masks" / "blackswan").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(4)]
    # frames 1, 2 are evaluated (first and last dropped); recompute J from the PNGs
    gt_dir = root / "davis2016" / "Annotations" / "480p" / "blackswan"
    j = [davis.jaccard(davis.read_mask_png(pngs[i]) > 0,
                       davis.read_mask_png(gt_dir / pngs[i].name) > 0) for i in (1, 2)]
    assert m["global"]["J-Mean"] == pytest.approx(np.mean(j), abs=1e-12)
    meta = m["meta"]
    assert meta["model"]["sha256_of"] == "file" and len(meta["model"]["sha256"]) == 64
    from siammask_edu.config import tracker_config

    assert meta["hyper_parameters"]["seg_thr"] == tracker_config("davis").seg_thr
    assert meta["frames_tracked"] == 3 and meta["seed"] == 0 and "torch" in meta["versions"]
    rows = list(csv.DictReader((out / "per_sequence.csv").open()))
    assert rows[0]["Sequence"] == "blackswan_1"
    assert (out / "jf_per_sequence.png").stat().st_size > 1000


def _davis2017_two_objects(root, dest, seq="blackswan", n=4):
    """A DAVIS-2017 layout under ``dest`` with ``n`` frames of a DAVIS-2016 sequence whose
    annotation is split into two objects (left part of the mask: 1, right part: 2)."""
    import shutil

    from siammask_edu import io

    src = root / "davis2016"
    jpeg = dest / "davis2017" / "JPEGImages" / "480p" / seq
    anno = dest / "davis2017" / "Annotations" / "480p" / seq
    jpeg.mkdir(parents=True)
    anno.mkdir(parents=True)
    for f in sorted((src / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:n]:
        shutil.copy(f, jpeg / f.name)
    for g in sorted((src / "Annotations" / "480p" / seq).glob("*.png"))[:n]:
        m = davis.read_mask_png(g) > 0
        cols = np.nonzero(m.any(0))[0]
        split = (cols.min() + cols.max()) // 2
        lab = m.astype(np.uint8)
        lab[:, split:] *= 2
        io.write_palette_png(anno / g.name, lab)
    return dest


def test_benchmark_davis_2017_batched_equals_one_tracker_per_object(tiny_ckpt, root,
                                                                     tmp_path):
    """The 2017 path tracks all objects in one MultiTracker; its PNGs equal the released
    driver's loop (one Tracker per object, arg-max merge) run here by hand."""
    import cv2

    from siammask_edu import io
    from siammask_edu.tracker import Tracker

    data = _davis2017_two_objects(root, tmp_path / "data")
    out = tmp_path / "d17"
    assert main(["benchmark", "davis", "--year", "2017", "--data", str(data), "--model",
                 str(tiny_ckpt), "--out", str(out), "--sequences", "blackswan",
                 "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert [r["Sequence"] for r in m["per_sequence"]] == ["blackswan_1", "blackswan_2"]
    assert m["meta"]["precision"] == "fp32"
    base = data / "davis2017"
    frames = io.list_images(base / "JPEGImages" / "480p" / "blackswan")
    gts = sorted((base / "Annotations" / "480p" / "blackswan").glob("*.png"))
    labels0 = davis.read_mask_png(gts[0])
    ids = [1, 2]
    tracker = Tracker.from_checkpoint(tiny_ckpt)
    singles = [Tracker(tracker.model, tracker.config) for _ in ids]
    f0 = io.read_image(frames[0])
    for t, k in zip(singles, ids):
        t.init(f0, cv2.boundingRect((labels0 == k).astype(np.uint8)))
    for fp, gp in zip(frames[1:], gts[1:]):
        frame = io.read_image(fp)
        lab = io.merge_objects(np.stack([t.track(frame).mask_prob for t in singles]),
                               tracker.config.seg_thr)
        got = davis.read_mask_png(out / "masks" / "blackswan" / gp.name)
        assert set(np.unique(lab)) == {0, 1, 2}  # both objects present: the merge decides
        np.testing.assert_array_equal(got, lab)


def test_benchmark_vot_writes_vot_results(tiny_ckpt, root, tmp_path):
    out = tmp_path / "v"
    rc = main(["benchmark", "vot", "--model", str(tiny_ckpt), "--out", str(out),
               "--sequences", "bag", "--max-frames", "3", "--quiet"])
    assert rc == 0
    traj = vot.read_trajectory(out / "results" / "baseline" / "bag" / "bag_001.txt")
    assert len(traj) == 3 and traj[0].tolist() == [1.0]
    m = json.loads((out / "metrics.json").read_text())
    nf, _ = vot.failures(traj)
    assert m["lost_number"] == nf and m["n_frames"] == 3
    assert m["meta"]["hyper_parameters"]["name"] == "vot"
    assert (out / "eao_curve.png").is_file()
    assert "bag" in (out / "per_sequence.txt").read_text()


def test_benchmark_bad_model_is_one_line(tmp_path, capsys):
    assert main(["benchmark", "vot", "--model", str(tmp_path / "none.pth"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("siammask-edu benchmark: error:")


def test_vot_trax_init_region_rules():
    from siammask_edu.integrations.vot_trax import init_region

    how, v = init_region("polygon", [(10, 10), (50, 12), (48, 40), (8, 38)])
    assert how == "polygon" and v.tolist() == [10, 10, 50, 12, 48, 40, 8, 38]
    how, v = init_region("rectangle", (5, 6, 20, 30))
    assert how == "box" and v.tolist() == [5, 6, 20, 30]
    how, v = init_region("polygon", [(0, 0), (10, 0), (12, 5), (10, 10), (0, 10)])
    assert how == "box" and v.tolist() == [0, 0, 12, 10]
    m = np.zeros((20, 30), np.uint8)
    m[4:9, 7:12] = 1  # rows 4..8, cols 7..11
    how, v = init_region("mask", (m, (100, 50)))
    assert how == "box" and v.tolist() == [107, 54, 5, 5]
    with pytest.raises(ValueError, match="empty"):
        init_region("mask", (np.zeros((3, 3), np.uint8), (0, 0)))


# -- issue 13 item 2: frames pair with ground truth by identity, never by position ---------


def _davis_copy(root, dest, seq="blackswan", n=6):
    """A DAVIS-2016 layout under ``dest/davis2016`` with the first ``n`` frames of ``seq``."""
    import shutil

    src, base = root / "davis2016", dest / "davis2016"
    for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        d = base / kind / "480p" / seq
        d.mkdir(parents=True)
        for f in sorted((src / kind / "480p" / seq).glob(f"*.{ext}"))[:n]:
            shutil.copy(f, d / f.name)
    return base


def test_benchmark_davis_missing_frames_are_listed_not_shifted(tiny_ckpt, root, tmp_path,
                                                               capsys):
    """One JPEG missing mid-sequence used to shift every later frame onto the next
    frame's annotation (exit 0, a wrong J&F); now every unpaired frame is named."""
    base = _davis_copy(root, tmp_path / "data")
    (base / "JPEGImages" / "480p" / "blackswan" / "00002.jpg").unlink()
    (base / "Annotations" / "480p" / "blackswan" / "00004.png").unlink()
    out = tmp_path / "out"
    rc = main(["benchmark", "davis", "--data", str(tmp_path / "data"), "--model",
               str(tiny_ckpt), "--out", str(out), "--sequences", "blackswan", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "blackswan/00002.jpg" in err and "blackswan/00004.jpg" in err, err
    assert "missing" in err and "extra" in err
    assert not (out / "metrics.json").exists()


def _vot_copy(root, dest, seq="bag", n=8, name=None, gt_lines=None):
    """A VOT sequence ``dest/vot/<name>`` with the first ``n`` frames of ``seq`` and the
    first ``gt_lines`` (default ``n``) ground-truth lines."""
    import shutil

    src, d = root / "vot" / seq, dest / "vot" / (name or seq)
    (d / "color").mkdir(parents=True)
    for f in sorted((src / "color").glob("*.jpg"))[:n]:
        shutil.copy(f, d / "color" / f.name)
    lines = (src / "groundtruth.txt").read_text().splitlines()[: gt_lines or n]
    (d / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return d


def test_benchmark_vot_missing_and_extra_frames_are_listed(tiny_ckpt, root, tmp_path,
                                                          capsys):
    """A VOT frame missing mid-sequence used to pair frame 5 with the ground truth of frame
    4 and so on (exit 0, accuracy 0.692 for 0.857); a frame without ground truth was
    silently dropped. Both are named, in one error."""
    gap = _vot_copy(root, tmp_path / "data", name="gap")
    (gap / "color" / "00000004.jpg").unlink()
    _vot_copy(root, tmp_path / "data", name="long", gt_lines=7)
    out = tmp_path / "out"
    rc = main(["benchmark", "vot", "--data", str(tmp_path / "data"), "--model", str(tiny_ckpt),
               "--out", str(out), "--sequences", "gap,long", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "gap/color/00000004.jpg" in err and "long/color/00000008.jpg" in err, err
    assert "missing" in err and "extra" in err
    assert not (out / "metrics.json").exists()


def test_benchmark_vot_max_frames_30_prints_no_nan(tiny_ckpt, root, tmp_path, capsys):
    """``--max-frames 30`` printed ``EAO nan``: EAO needs sequences reaching its interval
    (VOT2018: 100 frames); the line says so and metrics.json holds null and the reason."""
    out = tmp_path / "v30"
    rc = main(["benchmark", "vot", "--model", str(tiny_ckpt), "--out", str(out),
               "--sequences", "bag", "--max-frames", "30", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "nan" not in printed.lower(), printed
    assert "EAO n/a" in printed and "100 frames" in printed and "30" in printed, printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["eao"]["VOT2018"] is None and "100 frames" in m["eao_note"]
    assert m["n_frames"] == 30


def test_benchmark_vot_max_frames_3_accuracy_not_nan(tiny_ckpt, root, tmp_path, capsys):
    """Three frames all lie in the burn-in after the initialisation: no accuracy, said so."""
    rc = main(["benchmark", "vot", "--model", str(tiny_ckpt), "--out", str(tmp_path / "v3"),
               "--sequences", "bag", "--max-frames", "3", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0 and "nan" not in printed.lower(), printed
    assert "Accuracy n/a" in printed
