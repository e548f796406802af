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


# -- issue 13 item 4: every TrackerConfig field is checked at construction ------------------

BAD_SETTINGS = [
    # (field, value, words the message must hold besides field and value)
    ("window_influence", 1.5, "0 <= window_influence <= 1"),
    ("window_influence", -0.1, "0 <= window_influence <= 1"),
    ("lr", -1, "0 <= lr <= 1"),
    ("lr", 1.5, "0 <= lr <= 1"),
    ("penalty_k", -1, "penalty_k >= 0"),
    ("penalty_k", float("inf"), "finite"),
    ("lost_score", float("nan"), "0 <= lost_score <= 1"),
    ("lost_score", 95.0, "0 <= lost_score <= 1"),
    ("lost_score", -0.5, "0 <= lost_score <= 1"),
    ("seg_thr", 1.0, "0 <= seg_thr < 1"),
    ("seg_thr", -0.2, "0 <= seg_thr < 1"),
    ("seg_thr", "0.3", "a number"),
    ("instance_size", 100, "exemplar_size < instance_size"),
    ("instance_size", 127, "exemplar_size < instance_size"),
    ("instance_size", 260, "multiple of total_stride"),
    ("instance_size", 255.0, "an integer"),
    ("exemplar_size", 0, "exemplar_size >= 1"),
    ("total_stride", 0, "total_stride >= 1"),
    ("total_stride", True, "an integer"),
    ("base_size", -8, "base_size >= 0"),
    ("base_size", 7, "even"),
    ("context_amount", -0.5, "context_amount >= 0"),
    ("ratios", (), "non-empty"),
    ("ratios", (0.5, 0.0), "> 0"),
    ("scales", (float("nan"),), "> 0"),
    ("scales", 8.0, "a sequence"),
    ("min_size", 0.0, "min_size > 0"),
    ("min_polygon_area", -1.0, "min_polygon_area >= 0"),
    ("box_strategy", "nope", "'mbr', 'minmax', 'opt'"),
    ("name", "", "non-empty"),
    ("extra", None, "a dict"),
]


@pytest.mark.parametrize("field, value, words", BAD_SETTINGS,
                         ids=[f"{f}={v!r}" for f, v, _ in BAD_SETTINGS])
def test_tracker_config_rejects_out_of_range_settings(field, value, words):
    """Before: accepted silently (or failed deep inside init/track); now a ValueError at
    construction naming the field, the value and the allowed range."""
    with pytest.raises(ValueError) as err:
        TrackerConfig(**{field: value})
    msg = str(err.value)
    assert f"{field}=" in msg and repr(value) in msg and words in msg, msg
    # replace() constructs a new config: checked the same way
    with pytest.raises(ValueError, match=field):
        TrackerConfig.davis().replace(**{field: value})


def test_tracker_config_reports_every_bad_field_at_once():
    with pytest.raises(ValueError) as err:
        TrackerConfig(window_influence=1.5, lr=-1, penalty_k=-1, box_strategy="nope")
    msg = str(err.value)
    for name in ("window_influence=1.5", "lr=-1", "penalty_k=-1", "box_strategy='nope'"):
        assert name in msg, msg
    assert "4 settings" in msg


def test_every_shipped_and_documented_config_is_valid():
    from siammask_edu.config import TRACKER_PRESETS
    from siammask_edu.config import TrackerConfig as TC

    for name in TRACKER_PRESETS:
        tracker_config(name)
    # the shipped weights' calibrated lost_score / seg_thr (and the CLI's box strategies)
    from siammask_edu import Tracker

    cfg = Tracker.from_pretrained("lite").config
    assert 0.9 < cfg.lost_score < 1 and cfg.seg_thr != TC.davis().seg_thr
    for strategy in ("minmax", "mbr", "opt"):
        cfg.replace(box_strategy=strategy)
    # the edges of each range are inside it
    TC(window_influence=0.0, lr=0.0, penalty_k=0.0, seg_thr=0.0, lost_score=0.0,
       min_polygon_area=0.0, context_amount=0.0, base_size=0)
    TC(window_influence=1.0, lr=1.0, lost_score=1.0, instance_size=135)
    # numpy scalars (a value read from an array) are numbers too
    import numpy as np

    c = TC(lr=np.float32(0.5), instance_size=np.int64(271), ratios=[0.5, 1, 2])
    assert c.ratios == (0.5, 1.0, 2.0) and c.anchor_num == 3 and c.score_size == 27
    assert hash(c)  # still hashable (the list became a tuple)


def test_box_strategies_are_the_fitters():
    from siammask_edu.boxes import STRATEGIES
    from siammask_edu.config import BOX_STRATEGIES

    assert set(BOX_STRATEGIES) == set(STRATEGIES)


def test_ranges_are_documented_in_the_docstring_and_the_readme():
    import dataclasses
    from pathlib import Path

    from siammask_edu.config import TRACKER_RANGES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    fields = {f.name for f in dataclasses.fields(TrackerConfig)}
    assert set(TRACKER_RANGES) == fields
    for name, rng in TRACKER_RANGES.items():
        assert f"``{name}``: {rng}" in " ".join(TrackerConfig.__doc__.split()), name
        assert f"| `{name}` | {rng} |" in readme, name
