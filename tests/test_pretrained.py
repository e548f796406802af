"""Shipping plumbing: Tracker.from_pretrained, TrackResult.lost, scripts/export_lite.py and
scripts/calibrate_lost.py (on a tiny model in a temp folder; the real weights ship later)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from siammask_edu import Tracker, TrackerConfig, save_checkpoint
from siammask_edu.data import make_synthetic_sequence
from siammask_edu.testing import skip_missing_data, tiny_model
from siammask_edu.tracker import WEIGHTS_ENV, pretrained_path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "siammask_edu" / "weights" / "siammask_lite.pth"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    model = tiny_model(seed=3)
    path = tmp_path_factory.mktemp("w") / "siammask_lite.pth"
    save_checkpoint(model, path, {"lost_score": 0.25, "seg_thr": 0.45}, half=True)
    return model, path


def test_missing_weights_say_how_to_get_them():
    if SHIPPED.is_file():  # once the trained weights ship, they load offline
        t = Tracker.from_pretrained("lite")
        assert t.model.config.backbone == "efficientnet_lite0"
        return
    with pytest.raises(FileNotFoundError, match="SiamMask-Lite weights are not in this build"):
        Tracker.from_pretrained("lite")
    with pytest.raises(FileNotFoundError, match="siammask-edu train"):
        pretrained_path("lite")


def test_unknown_name_and_missing_explicit_file(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown pretrained model"):
        Tracker.from_pretrained("resnet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Tracker.from_pretrained("lite", weights=tmp_path / "nope.pth")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match=WEIGHTS_ENV):
        Tracker.from_pretrained("lite")


def test_from_pretrained_loads_fp16_file_and_its_thresholds(tiny_file, monkeypatch):
    model, path = tiny_file
    t = Tracker.from_pretrained("lite", weights=path, fast=True)  # unfolded: bit for bit
    assert t.config.lost_score == 0.25 and t.config.name == "davis"
    assert t.config.seg_thr == 0.45 != TrackerConfig.davis().seg_thr
    # the same tracking as the original network with its weights rounded to fp16
    rounded = tiny_model(seed=3)
    rounded.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                             for k, v in model.state_dict().items()})
    ref = Tracker(rounded, TrackerConfig.davis().replace(seg_thr=0.45))
    seq = make_synthetic_sequence(n_frames=3, size=(120, 160), seed=2)
    for a, b in zip(t.track_sequence(seq.frames, seq.box), ref.track_sequence(seq.frames, seq.box)):
        assert a.box == b.box and a.score == b.score and np.array_equal(a.mask, b.mask)
    # the environment variable: a file, or a folder holding siammask_lite.pth
    for target in (path, path.parent):
        monkeypatch.setenv(WEIGHTS_ENV, str(target))
        assert Tracker.from_pretrained("lite").config.lost_score == 0.25
    # a TrackerConfig given explicitly is used as it is
    t = Tracker.from_pretrained("lite", config=TrackerConfig.vot(), weights=path)
    assert t.config.lost_score == TrackerConfig().lost_score == 0.5 and t.config.name == "vot"
    assert t.config.seg_thr == TrackerConfig.vot().seg_thr


def test_from_pretrained_runs_folded_by_default(tiny_file):
    """Default fast="fold_all": BatchNorm folded, channels-last; the track stays that of
    the unfolded network to well below a pixel."""
    model, path = tiny_file
    folded = Tracker.from_pretrained("lite", weights=path)
    plain = Tracker.from_pretrained("lite", weights=path, fast=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    seq = make_synthetic_sequence(n_frames=4, size=(120, 160), seed=2)
    for a, b in zip(folded.track_sequence(seq.frames, seq.box),
                    plain.track_sequence(seq.frames, seq.box)):
        assert a.row_col == b.row_col and abs(a.score - b.score) < 1e-4
        np.testing.assert_allclose(a.center, b.center, atol=1e-2)
        np.testing.assert_allclose(a.size, b.size, atol=1e-2)


def test_lost_follows_the_score_and_threshold(tiny_file):
    model, _ = tiny_file
    seq = make_synthetic_sequence(n_frames=4, size=(120, 160), seed=1)
    for thr, expect in ((0.0, False), (1.0, True)):
        t = Tracker(model, TrackerConfig.davis().replace(lost_score=thr))
        res = list(t.track_sequence(seq.frames, seq.box))
        assert [r.lost for r in res] == [expect] * 3
    scores = [r.score for r in res]
    thr = float(np.median(scores))
    t = Tracker(model, TrackerConfig.davis().replace(lost_score=thr))
    res = list(t.track_sequence(seq.frames, seq.box))
    assert [r.lost for r in res] == [s < thr for s in scores]


def test_best_threshold_separates_and_rejects_empty_sets():
    cal = _script("calibrate_lost")
    r = cal.best_threshold(np.array([0.9, 0.95, 0.8]), np.array([0.1, 0.3, 0.5]))
    assert 0.5 < r["lost_score"] < 0.8 and r["balanced_accuracy"] == 1.0
    r = cal.best_threshold(np.array([0.9, 0.4]), np.array([0.5, 0.1]))
    assert r["balanced_accuracy"] == 0.75
    with pytest.raises(ValueError, match="need on-target"):
        cal.best_threshold(np.array([]), np.array([0.2]))


def test_fill_card_replaces_only_the_results_section():
    exp = _script("export_lite")
    tpl = exp.TEMPLATE.read_text()
    out = exp.fill_card(tpl, "## Results\n\nX")
    head, tail = tpl.split(exp.BEGIN)[0], tpl.split(exp.END)[1]
    assert out.startswith(head) and out.endswith(tail) and "## Results\n\nX" in out
    assert tpl.split(exp.BEGIN)[1].split(exp.END)[0] not in out  # the old section is gone
    assert exp.fill_card(out, "Y").count(exp.BEGIN) == 1
    with pytest.raises(ValueError, match="markers|once"):
        exp.fill_card("no markers", "Y")


def test_export_and_calibrate_end_to_end(tmp_path):
    """A 4-step tiny training run, calibrated on 2 DAVIS train sequences, exported and
    measured on one val sequence: every figure in the card comes from the run."""
    pytest.importorskip("siammask_edu.paths").davis_sequence  # noqa: B018
    from siammask_edu.datasets import write_synthetic_sequences
    from siammask_edu.paths import davis_sequence
    from siammask_edu.training import TrainConfig, train

    try:
        davis_sequence("dog", "480p")
        davis_sequence("bear", "240p")
    except FileNotFoundError as exc:
        skip_missing_data(f"DAVIS data not available: {exc}")
    synth = write_synthetic_sequences(tmp_path / "synth", 2, 6)
    cfg = TrainConfig.tiny(data=({"type": "custom", "root": str(synth), "frame_range": 3},),
                           epochs=2, pairs_per_epoch=4, batch_size=2, log_every=1)
    train(cfg, tmp_path / "run" / "0_base", progress=False)
    final = tmp_path / "run" / "0_base" / "final.pth"
    exp, cal = _script("export_lite"), _script("calibrate_lost")
    res = cal.calibrate(final, ["bear", "boat"], "240p", max_frames=4, on_target=0.0,
                        off_target=0.0)
    assert res["n_on_target"] == 6 and res["n_absent"] == 8 and 0 <= res["lost_score"] <= 1
    # the mask threshold: the grid's best mean J, one J per candidate
    assert res["seg_thr"] in res["seg_thr_grid"] and len(res["seg_thr_J"]) == 9
    assert max(res["seg_thr_J"]) == res["seg_thr_J"][res["seg_thr_grid"].index(res["seg_thr"])]
    (tmp_path / "lost.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="validation sequences"):
        cal.calibrate(final, ["bear", "dog"], "240p", max_frames=2)
    out = tmp_path / "ship" / "siammask_lite.pth"
    r = exp.export(final, out, run_dir=tmp_path / "run", lost_json=tmp_path / "lost.json",
                   sequences=["dog"], max_frames=4, threads=1)
    assert not r["intermediate"] and r["step"] == 4 and r["steps_total"] == 4
    assert out.stat().st_size < 25 * 2**20 and r["stages"][0]["steps_done"] == 4
    assert 0.0 <= r["val"]["dog"]["J"] <= 1.0 and r["val"]["dog"]["frames"] == 4 and r["fps"] > 0
    assert set(r["by_precision"]) == {"fp32", "bf16"} and r["precision"] == "fp32"
    assert r["by_precision"]["fp32"]["val"] == r["val"]
    assert len(r["fps_runs"]) == 3 and r["fps"] == float(np.median(r["fps_runs"]))
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert f"{r['val']['dog']['J']:.3f}" in card and "Not measured" not in card
    assert f"{res['lost_score']:.4f}" in card and "INTERIM" not in card
    assert 'With `precision="bf16"` (autocast)' in card
    t = Tracker.from_pretrained("lite", weights=out)
    assert t.config.lost_score == pytest.approx(res["lost_score"])
    assert t.config.seg_thr == res["seg_thr"] and "### Mask threshold" in card
    # an unfinished stage is refused unless asked for, and then labelled interim
    last = tmp_path / "run" / "mid.pth"
    train(cfg, tmp_path / "run2", max_steps=1, progress=False)
    (tmp_path / "run2" / "last.pth").rename(last)
    with pytest.raises(ValueError, match="not the end of a finished stage"):
        exp.export(last, tmp_path / "x.pth", sequences=["dog"], max_frames=3)
    assert not (tmp_path / "x.pth").exists()
    r = exp.export(last, tmp_path / "mid" / "siammask_lite.pth", sequences=["dog"],
                   max_frames=3, threads=1, allow_intermediate=True)
    assert r["intermediate"] and r["step"] == 1 and r["steps_total"] == 4
    card = (tmp_path / "mid" / "MODEL_CARD.md").read_text()
    assert "INTERIM weights" in card and "step 1 of 4" in card


def test_track_davis_j_by_threshold_matches_the_trackers_own_mask():
    """One run gives J for every mask threshold: at the tracker's own seg_thr it is the
    J of ``TrackResult.mask``; a higher threshold never adds mask pixels."""
    from siammask_edu.paths import davis_sequence

    try:
        davis_sequence("bear", "240p")
    except FileNotFoundError as exc:
        skip_missing_data(f"DAVIS data not available: {exc}")
    exp = _script("export_lite")
    t = Tracker(tiny_model(seed=3), TrackerConfig.davis())
    r = exp.track_davis(t, "bear", "240p", max_frames=4, seg_thrs=[0.2, t.config.seg_thr, 0.9])
    assert r["J_by_thr"].shape == (3, 3)
    np.testing.assert_array_equal(r["J_by_thr"][:, 1], r["J_per_frame"])
    assert "J_by_thr" not in exp.track_davis(t, "bear", "240p", max_frames=2)
