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
