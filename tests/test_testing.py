"""Tests of siammask_edu.testing (compare, tiny_model, random_boxes, synthetic_frame)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu import testing


def test_compare_exact_prints_and_returns(capsys):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    res = testing.compare("same", a, a.copy())
    assert res == testing.Comparison(True, True, 0.0)
    line = capsys.readouterr().out
    assert "same" in line and "exact: True" in line and "allclose: True" in line
    assert "maxdiff: 0.000e+00" in line


def test_compare_close_but_not_exact(capsys):
    a = torch.ones(3, 4)
    b = a + 1e-7
    res = testing.compare("close", a, b)
    assert res.close and not res.exact
    assert res.maxdiff == pytest.approx(1e-7, rel=0.2)
    assert "exact: False" in capsys.readouterr().out


def test_compare_mixed_numpy_and_torch():
    t = torch.randn(2, 5, requires_grad=True)
    testing.compare("torch vs numpy", t * 1.0, t.detach().numpy())


def test_compare_raises_with_maxdiff():
    a = np.zeros((3, 3))
    b = a.copy()
    b[1, 2] = 0.5
    with pytest.raises(AssertionError, match=r"max \|diff\| = 5\.000e-01.*index \(1, 2\)"):
        testing.compare("differs", a, b)


def test_compare_reports_worst_violation_not_largest_diff():
    # 1000 vs 1000.001 is within rtol; 0 vs 1e-4 is not, although its diff is smaller
    ours, ref = np.array([1000.001, 1e-4]), np.array([1000.0, 0.0])
    with pytest.raises(AssertionError, match=r"index \(1,\)"):
        testing.compare("worst", ours, ref)


def test_comparison_displays_nothing_in_ipython():
    res = testing.compare("display", np.zeros(2), np.zeros(2))
    assert res._ipython_display_() is None
    assert res.exact and tuple(res) == (True, True, 0.0)


def test_compare_tolerances_are_used():
    a, b = np.array([1.0]), np.array([1.001])
    with pytest.raises(AssertionError):
        testing.compare("tight", a, b)
    assert testing.compare("loose", a, b, atol=1e-2).close


def test_compare_shape_mismatch_raises():
    with pytest.raises(AssertionError, match="shape mismatch"):
        testing.compare("shape", np.zeros(3), np.zeros((3, 1)))


def test_compare_bool_and_int():
    assert testing.compare("bools", np.array([True, False]), np.array([True, False])).exact
    with pytest.raises(AssertionError):
        testing.compare("ints", np.array([1, 2]), np.array([1, 3]))


def test_compare_nan_fails():
    with pytest.raises(AssertionError):
        testing.compare("nan", np.array([np.nan]), np.array([0.0]))


def test_tiny_model_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    m1 = testing.tiny_model(seed=3)
    after = torch.rand(1)
    assert torch.equal(after, expected_next), "tiny_model changed the global RNG"
    m2 = testing.tiny_model(seed=3)
    m3 = testing.tiny_model(seed=4)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1 if s1[k].is_floating_point())
    assert not m1.training
    assert m1.config.name == "tiny"


def test_tiny_model_runs_released_geometry():
    m = testing.tiny_model()
    with torch.no_grad():
        ex = m.template(torch.rand(1, 3, 127, 127) * 255)
        out = m.track(torch.rand(1, 3, 255, 255) * 255, ex)
    assert tuple(out.score.shape) == (1, 10, 25, 25)


@pytest.mark.parametrize("frame_size", [(480, 854), (10, 7), (2, 2)])
def test_random_boxes_are_valid(frame_size):
    boxes = testing.random_boxes(200, frame_size, rng=0, min_size=2.0)
    h, w = frame_size
    assert boxes.shape == (200, 4) and boxes.dtype == np.float64
    x, y, bw, bh = boxes.T
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + bw <= w + 1e-9).all() and (y + bh <= h + 1e-9).all()
    assert (bw >= 2.0).all() and (bh >= 2.0).all()


def test_random_boxes_seeded_and_generator():
    a = testing.random_boxes(5, (100, 200), rng=7)
    b = testing.random_boxes(5, (100, 200), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, testing.random_boxes(5, (100, 200), rng=8))


def test_random_boxes_rejects_tiny_frame():
    with pytest.raises(ValueError):
        testing.random_boxes(1, (1, 100), min_size=2.0)


def test_synthetic_frame_deterministic_rgb_and_mask():
    f1, m1 = testing.synthetic_frame(120, 160, seed=1, return_mask=True)
    f2 = testing.synthetic_frame(120, 160, seed=1)
    assert f1.shape == (120, 160, 3) and f1.dtype == np.uint8
    np.testing.assert_array_equal(f1, f2)
    assert not np.array_equal(f1, testing.synthetic_frame(120, 160, seed=2))
    assert m1.shape == (120, 160) and m1.dtype == bool
    assert 0.02 < m1.mean() < 0.5
    # the target is one solid colour, distinct from the background around it
    inside = f1[m1]
    assert (inside == inside[0]).all()
    assert f1[~m1].mean() < inside.mean()


def test_lite_or_seeded_loads_the_weights_file(tmp_path, monkeypatch, capsys):
    from siammask_edu import save_checkpoint
    from siammask_edu.tracker import WEIGHTS_ENV

    ref = testing.tiny_model(seed=5)
    path = tmp_path / "siammask_lite.pth"
    save_checkpoint(ref, path)
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    model, trained = testing.lite_or_seeded()
    assert trained and model.config.name == "tiny" and not model.training
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k
    assert "SiamMask-Lite: shipped weights siammask_lite.pth" in capsys.readouterr().out


@pytest.mark.parametrize("preset", ["sharp", "base"])
def test_lite_or_seeded_falls_back_without_weights(fixtures_dir, tmp_path, monkeypatch, capsys,
                                                   preset):
    from siammask_edu.tracker import WEIGHTS_ENV

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.pth"))  # pretrained_path raises
    model, trained = testing.lite_or_seeded(preset)
    assert not trained and model.config.name == preset and not model.training
    assert (model.refine is None) == (preset == "base")
    out = capsys.readouterr().out
    assert "SiamMask-Lite weights absent" in out and "siammask_sharp_seed1.f16.pth" in out


def test_skip_missing_data_skips_or_fails_under_the_switch(monkeypatch):
    monkeypatch.delenv(testing.REQUIRE_DATA_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing data: no DAVIS"):
        testing.skip_missing_data("no DAVIS")
    monkeypatch.setenv(testing.REQUIRE_DATA_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no DAVIS.*SIAMMASK_EDU_REQUIRE_DATA"):
        testing.skip_missing_data("no DAVIS")
    monkeypatch.setenv(testing.REQUIRE_DATA_ENV, "0")
    assert not testing.data_required()


def test_book_sequence_falls_back_to_the_synthetic_sample(tmp_path, monkeypatch, capsys):
    from siammask_edu import data

    monkeypatch.setenv("SIAMMASK_EDU_DATA", str(tmp_path))  # empty: no DAVIS
    seq = testing.book_sequence("car-shadow", n_frames=3)
    assert "siammask-edu data get davis2016" in capsys.readouterr().out
    ref = data.make_synthetic_sequence(n_frames=30, size=(180, 240), seed=0)
    assert (seq.name, seq.davis, len(seq.frames), seq.frame_paths) == (
        "synthetic_ellipse", False, 3, None)
    np.testing.assert_array_equal(seq.frames[2], ref.frames[2][:, :, ::-1])  # BGR
    np.testing.assert_array_equal(seq.masks[2], ref.masks[2])
    assert seq.box == data.sample_box("synthetic_ellipse")  # the shipped sample's own box


def test_released_layout_network_without_fixtures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIAMMASK_EDU_REFERENCE", str(tmp_path))  # empty: no fixtures
    model, recorded = testing.released_layout_network("base")
    assert not recorded and "stands in" in capsys.readouterr().out
    assert sum(p.numel() for p in model.parameters()) == 18_816_735 and not model.training
    # calibrated BatchNorm statistics keep the untrained network's outputs in range
    x = torch.from_numpy(testing.synthetic_frame(255, 255, seed=5)).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = model.track(x.float(), model.template(x[:, :, 64:191, 64:191].float()))
    assert torch.isfinite(out.score).all() and float(out.score.abs().max()) < 100
