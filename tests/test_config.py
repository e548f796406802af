import pytest

from siammask_edu import ModelConfig, TrackerConfig, fast_mode, model_config, tracker_config


def test_tracker_presets_released_values():
    # released-implementation.md §4.1
    t = tracker_config("davis")
    assert (t.penalty_k, t.window_influence, t.lr, t.seg_thr) == (0.04, 0.40, 1.0, 0.35)
    t = tracker_config("vot")
    assert (t.penalty_k, t.window_influence, t.lr, t.seg_thr) == (0.04, 0.42, 0.25, 0.30)
    t = tracker_config("vot-ld")
    assert (t.penalty_k, t.window_influence, t.lr, t.seg_thr) == (0.10, 0.41, 0.32, 0.15)
    t = tracker_config("base")
    assert (t.penalty_k, t.window_influence, t.lr, t.seg_thr) == (0.09, 0.39, 0.38, 0.30)
    assert t.score_size == 25 and t.anchor_num == 5 and t.context_amount == 0.5


def test_unknown_presets():
    with pytest.raises(ValueError, match="davis"):
        tracker_config("davis2017")
    with pytest.raises(ValueError, match="sharp"):
        model_config("resnet")


def test_model_config_roundtrip():
    c = ModelConfig.tiny()
    assert ModelConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"name": "x", "layers": 3})
    assert TrackerConfig.davis().replace(lr=0.5).lr == 0.5


@pytest.mark.parametrize("name", ["SIAMMASK_EDU_SHORT_RUNS", "SIAMMASK_EDU_FAST"])
def test_fast_mode(monkeypatch, name):
    # the switch and its older name each work alone (CI's environment sets the new one)
    for var in ("SIAMMASK_EDU_SHORT_RUNS", "SIAMMASK_EDU_FAST"):
        monkeypatch.delenv(var, raising=False)
    assert not fast_mode()
    monkeypatch.setenv(name, "1")
    assert fast_mode()
    monkeypatch.setenv(name, "0")
    assert not fast_mode()
    monkeypatch.delenv(name)
    assert not fast_mode()
