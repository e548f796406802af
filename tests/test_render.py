"""Pure drawing functions of ``siammask_edu.viz.render``: pixel checks on small frames."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import matplotlib
import numpy as np
import pytest

from siammask_edu.viz import render


def _frame(h=60, w=80, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 200 + 20).astype(np.uint8)


def _changed(a, b):
    return np.any(a != b, axis=2)


def test_overlay_changes_only_masked_pixels():
    f = _frame()
    keep = f.copy()
    mask = np.zeros(f.shape[:2], bool)
    mask[10:30, 20:50] = True
    out = render.overlay_mask(f, mask, color=(255, 0, 0), alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == f.shape
    assert np.array_equal(f, keep)  # input untouched
    assert np.array_equal(_changed(out, f), mask)
    expect = np.rint(0.5 * f[mask].astype(np.float32) + 0.5 * np.array([255, 0, 0]))
    assert np.array_equal(out[mask], expect.astype(np.uint8))
    assert np.array_equal(render.overlay_mask(f, mask, alpha=0.0), f)
    with pytest.raises(ValueError, match="mask shape"):
        render.overlay_mask(f, mask[:10])
    with pytest.raises(ValueError, match="RGB frame"):
        render.overlay_mask(f[..., 0], mask)


def test_polygon_drawn_inside_its_bounds():
    f = np.zeros((60, 80, 3), np.uint8)
    poly = np.array([[20, 15], [60, 10], [65, 40], [25, 45]], np.float32)
    out = render.draw_polygon(f, poly, color=(0, 255, 0), thickness=2)
    assert not f.any()  # input untouched
    ys, xs = np.nonzero(_changed(out, f))
    assert len(ys) > 100
    assert xs.min() >= 20 - 2 and xs.max() <= 65 + 2 and ys.min() >= 10 - 2 and ys.max() <= 45 + 2
    assert out[10:46, 20:66, 1].max() == 255 and out[..., 0].max() == 0  # green only
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):  # every edge is drawn
        mx, my = int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2))
        assert out[my - 1:my + 2, mx - 1:mx + 2, 1].max() > 100
    assert out[28, 42].sum() == 0  # the interior is not filled
    partly_out = render.draw_polygon(f, poly + [50, 0], thickness=1)
    assert partly_out.shape == f.shape and partly_out.any()


def test_draw_box_outlines_exactly_the_covered_pixels():
    f = np.zeros((30, 40, 3), np.uint8)
    out = render.draw_box(f, (5, 8, 10, 6), color=(255, 255, 0), thickness=1)
    drawn = _changed(out, f)
    expect = np.zeros_like(drawn)
    expect[8:14, 5:15] = True
    expect[9:13, 6:14] = False
    assert np.array_equal(drawn, expect)
    thick = _changed(render.draw_box(f, (5, 8, 10, 6), thickness=2), f)
    assert thick[8:14, 5:15].sum() == thick.sum() > drawn.sum()


@dataclass(frozen=True)
class _Result:
    mask: np.ndarray
    polygon: np.ndarray
    box: tuple
    score: float


def test_draw_result_draws_every_part():
    f = _frame(80, 100)
    mask = np.zeros((80, 100), bool)
    mask[40:60, 50:80] = True
    res = _Result(mask, np.array([[45, 35], [85, 35], [85, 65], [45, 65]], np.float32),
                  (48.0, 38.0, 34.0, 24.0), 0.93)
    out = render.draw_result(f, res)
    changed = _changed(out, f)
    assert changed[45:55, 60:70].all()  # mask interior tinted
    assert changed[50, 45] and changed[35, 60]  # polygon edges
    assert changed[:10, :40].any()  # score text in the top-left corner
    assert not changed[70:, :40].any()
    bare = render.draw_result(f, _Result(mask, None, None, None))
    assert np.array_equal(_changed(bare, f), mask)


def test_draw_result_marks_a_lost_target():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Lost(_Result):
        lost: bool = True

    f = _frame(80, 160)
    mask = np.zeros((80, 160), bool)
    ok = render.draw_result(f, _Result(mask, None, None, 0.5))
    lost = render.draw_result(f, Lost(mask, None, None, 0.5))
    # the label is longer and red: text pixels appear right of the plain label
    assert _changed(lost, f)[:20].sum() > _changed(ok, f)[:20].sum()
    text = lost[:20][_changed(lost, f)[:20]]
    assert (text[:, 0].astype(int) - text[:, 1] > 100).any()  # red ink


def test_encode_png_roundtrip():
    f = _frame()
    data = render.encode_png(f)
    assert isinstance(data, bytes) and data.startswith(b"\x89PNG")
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, f)
    gray = render.encode_png(f[..., 0])
    assert np.array_equal(cv2.imdecode(np.frombuffer(gray, np.uint8), cv2.IMREAD_UNCHANGED),
                          f[..., 0])


def test_mask_to_rgb():
    m = np.zeros((4, 5), bool)
    m[1, 2] = True
    rgb = render.mask_to_rgb(m, color=(10, 20, 30))
    assert rgb.shape == (4, 5, 3) and tuple(rgb[1, 2]) == (10, 20, 30) and rgb.sum() == 60
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    assert render.mask_to_rgb(labels).reshape(4, 3).tolist() == [
        [0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    with pytest.raises(ValueError, match="score_map_to_rgb|bool or integer"):
        render.mask_to_rgb(m.astype(np.float32))


def test_score_map_to_rgb():
    s = np.arange(25, dtype=np.float32).reshape(5, 5)
    rgb = render.score_map_to_rgb(s, cmap="viridis")
    lut = (matplotlib.colormaps["viridis"]([0.0, 1.0])[:, :3] * 255).round()
    assert rgb.shape == (5, 5, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[0, 0], lut[0]) and np.array_equal(rgb[4, 4], lut[1])
    big = render.score_map_to_rgb(s, size=(50, 50))
    assert big.shape == (50, 50, 3) and (big[:10, :10] == rgb[0, 0]).all()
    assert np.array_equal(render.score_map_to_rgb(s, vmin=0, vmax=100)[0, 0], lut[0])
    flat = render.score_map_to_rgb(np.ones((3, 3)))
    assert (flat == lut[0]).all()


def test_make_grid_layout():
    a, b, c = _frame(10, 20, 1), _frame(12, 15, 2), _frame(10, 20, 3)[..., 0]
    g = render.make_grid([a, b, c], ncols=2, pad=2, pad_value=255)
    assert g.shape == (2 * (12 + 2) + 2, 2 * (20 + 2) + 2, 3)
    assert np.array_equal(g[2:12, 2:22], a)
    assert np.array_equal(g[2:14, 24:39], b)
    assert np.array_equal(g[16:26, 2:22, 1], c)
    assert (g[0] == 255).all()
    assert render.make_grid([a], ncols=4).shape == (14, 24, 3)


def test_draw_box_survives_huge_and_nonfinite_boxes():
    from siammask_edu.viz.render import draw_box

    frame = np.zeros((20, 30, 3), np.uint8)
    out = draw_box(frame, (5, 5, 1e12, 1e12), (255, 0, 0))
    assert out[5, 5:, 0].max() == 255 and out[5:, 5, 0].max() == 255  # top/left edges drawn
    assert np.array_equal(draw_box(frame, (float("nan"), 0, 3, 3)), frame)
