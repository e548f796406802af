import json

import pytest

from siammask_edu.cli import main


def test_eval_vot_matches_reference(fixtures_dir, tmp_path, capsys):
    ref = json.loads((fixtures_dir / "vot_metrics" / "reference.json").read_text())
    rc = main(["eval", "vot", "--results", str(fixtures_dir / "vot_metrics" / "drift"),
               "--out", str(tmp_path)])
    assert rc == 0
    got = json.loads((tmp_path / "metrics.json").read_text())
    want = ref["dataset_level"]["drift"]
    assert got["accuracy"] == pytest.approx(want["accuracy_pooled_over_frames"], abs=1e-12)
    assert got["lost_number"] == want["lost_number"]
    assert got["eao"]["VOT2018"] == pytest.approx(want["eao"]["VOT2018_interval_100_356"],
                                                  abs=1e-12)
    assert (tmp_path / "per_sequence.csv").read_text().startswith("sequence,")
    assert "Accuracy 0.2244" in capsys.readouterr().out


def test_eval_davis_matches_reference(fixtures_dir, tmp_path):
    ref = json.loads((fixtures_dir / "davis_metrics" / "reference.json").read_text())
    rc = main(["eval", "davis", "--results", str(fixtures_dir / "davis_metrics" / "dilate9"),
               "--out", str(tmp_path)])
    assert rc == 0
    got = json.loads((tmp_path / "metrics.json").read_text())["global"]
    want = ref["global_over_sequences"]["dilate9"]
    assert got["J-Mean"] == pytest.approx(want["J-mean"], abs=1e-12)
    assert got["F-Decay"] == pytest.approx(want["F-decay"], abs=1e-12)


def test_eval_bad_input_is_one_line(tmp_path, capsys):
    assert main(["eval", "davis", "--results", str(tmp_path / "none")]) == 2
    assert main(["eval", "vot", "--results", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("siammask-edu eval: error:") for line in err)


def test_train_missing_config(tmp_path):
    assert main(["train", str(tmp_path / "missing.json")]) == 2


# -- issue 13 item 3: every input problem at once, grouped; item 2: no NaN printed ----------


def _davis_gt(root, seqs=("seqa", "seqb", "seqc"), n=6, size=(40, 64)):
    import numpy as np

    from siammask_edu.metrics import davis

    for seq in seqs:
        for t in range(n):
            lab = np.zeros(size, np.uint8)
            lab[5 + t : 20 + t, 4:30] = 255
            davis.write_mask_png(root / "Annotations" / "480p" / seq / f"{t:05d}.png", lab)
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "val.txt").write_text("".join(s + "\n" for s in seqs))
    return root


def test_eval_davis_reports_every_problem_at_once(tmp_path, capsys):
    """Missing sequences and frames, PNGs of the wrong size or mode and extra PNGs used to
    come one kind per run (missing first); now one grouped error names them all."""
    import shutil

    import numpy as np
    from PIL import Image

    from siammask_edu.metrics import davis

    root = _davis_gt(tmp_path / "data")
    res = tmp_path / "res"
    for seq in ("seqa", "seqb"):
        shutil.copytree(root / "Annotations" / "480p" / seq, res / seq)
    (res / "seqa" / "00002.png").unlink()  # missing frame
    davis.write_mask_png(res / "seqa" / "00001.png", np.zeros((20, 32), np.uint8))  # size
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(res / "seqa" / "00003.png")  # RGB
    for t in (1, 2, 3, 4):  # a whole sequence at half size: one entry, not four
        davis.write_mask_png(res / "seqb" / f"{t:05d}.png", np.zeros((20, 32), np.uint8))
    davis.write_mask_png(res / "seqa" / "00009.png", np.zeros((40, 64), np.uint8))  # extra
    (res / "seqa" / "notes.txt").write_text("not a mask")  # ignored: not a PNG
    # seqc: no results at all
    rc = main(["eval", "davis", "--data", str(root), "--results", str(res)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    msg = err[0]
    assert "2 missing: seqa/00002.png, seqc/ (whole sequence)" in msg, msg
    assert "seqa/00001.png: 32x20 (WxH) differs from the ground truth 64x40" in msg, msg
    assert "seqb/00001.png … 00004.png (4 frames): 32x20 (WxH)" in msg, msg
    assert "5 wrong size" in msg and "1 wrong mode: seqa/00003.png: mode 'RGB'" in msg, msg
    assert "1 extra: seqa/00009.png" in msg, msg
    assert "9 problems" in msg, msg


def _vot_seq(root, name, n, size=(48, 32), drop=()):
    import cv2
    import numpy as np

    d = root / "vot" / name
    (d / "color").mkdir(parents=True)
    for i in range(1, n + 1):
        if i not in drop:
            cv2.imwrite(str(d / "color" / f"{i:08d}.jpg"), np.full((size[1], size[0], 3), 90,
                                                                     np.uint8))
    (d / "groundtruth.txt").write_text("10,8,20,8,20,18,10,18\n" * n)
    return d


def _vot_result(res, name, lines):
    (res / name).mkdir(parents=True, exist_ok=True)
    (res / name / f"{name}_001.txt").write_text("".join(ln + "\n" for ln in lines))


def test_eval_vot_reports_every_problem_at_once(tmp_path, capsys):
    """A result file shorter than its ground truth was evaluated on the common frames; a
    sequence of the dataset without results was left out; an unreadable line stopped the
    run. Now all of them, with frames missing from the dataset, come in one error."""
    data, res = tmp_path / "data", tmp_path / "res"
    for s in ("s1", "s2", "s3", "s5"):
        _vot_seq(data, s, 12, drop=(5,) if s == "s5" else ())
    (data / "vot" / "list.txt").write_text("s1\ns2\ns3\ns5\n")
    _vot_result(res, "s1", ["1"] + ["10,8,20,8,20,18,10,18"] * 10 + ["oops"])  # unreadable
    _vot_result(res, "s2", ["1"] + ["10,8,20,8,20,18,10,18"] * 9)  # 10 lines for 12
    # s3: no result file; s4: results without ground truth
    _vot_result(res, "s4", ["1"] * 12)
    _vot_result(res, "s5", ["1"] * 12)  # its dataset misses frame 5
    rc = main(["eval", "vot", "--data", str(data), "--results", str(res)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    msg = err[0]
    assert "(5 problems)" in msg, msg
    assert "2 missing: s3/s3_001.txt: no result file" in msg, msg
    assert "s5/color/00000005.jpg: a ground-truth line without its frame" in msg, msg
    assert "1 wrong length: s2/s2_001.txt: 10 lines for 12 ground-truth frames" in msg, msg
    assert "1 unreadable: s1/s1_001.txt line 12: 'oops' is not a VOT region" in msg, msg
    assert "1 extra: s4/: no ground truth" in msg, msg


def test_eval_vot_short_sequences_say_why_there_is_no_eao(tmp_path, capsys):
    """EAO over VOT2018's 100-356 frames of 20-frame sequences printed ``EAO nan``."""
    data, res = tmp_path / "data", tmp_path / "res"
    _vot_seq(data, "s1", 20)
    _vot_result(res, "s1", ["1"] + ["10,8,20,8,20,18,10,18"] * 19)
    rc = main(["eval", "vot", "--data", str(data), "--results", str(res), "--out",
               str(tmp_path / "o")])
    printed = capsys.readouterr().out
    assert rc == 0 and "nan" not in printed.lower(), printed
    assert "EAO n/a" in printed and "100 frames" in printed, printed
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())  # strict JSON: no NaN
    assert m["eao"]["VOT2018"] is None and "20" in m["eao_note"]
    assert m["accuracy"] == pytest.approx(1.0)
