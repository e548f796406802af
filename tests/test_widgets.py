"""Widgets and static figures, driven without a browser or a kernel (conventions §4.8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siammask_edu.viz import figures, widgets  # widgets imports ipywidgets lazily

pytest.importorskip("ipywidgets")


def _masks(seed=0):
    """Mask logits (3969, 25, 25) whose RoW (r, c) is a disc at a RoW-dependent place."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:63, 0:63]
    m = np.empty((25, 25, 63, 63), np.float32)
    for r in range(25):
        for c in range(25):
            cy, cx = 10 + 1.7 * r, 10 + 1.7 * c
            m[r, c] = 8.0 - np.hypot(yy - cy, xx - cx)
    m += g.normal(0, 0.1, m.shape).astype(np.float32)
    return m.reshape(625, 3969).T.reshape(3969, 25, 25), m


def _score():
    s = np.zeros((25, 25), np.float32)
    s[7, 18] = 0.9
    return s


def test_as_row_masks_layouts_agree():
    flat, grid = _masks()
    np.testing.assert_array_equal(figures.as_row_masks(flat), grid)
    np.testing.assert_array_equal(figures.as_row_masks(flat[None]), grid)
    np.testing.assert_array_equal(figures.as_row_masks(torch.from_numpy(grid)), grid)
    # channel k of RoW (r, c) is mask pixel (k // 63, k % 63)
    assert figures.as_row_masks(flat)[3, 4, 10, 20] == flat[10 * 63 + 20, 3, 4]
    with pytest.raises(ValueError):
        figures.as_row_masks(np.zeros((3970, 25, 25)))


def test_row_window_geometry():
    assert figures.row_window(12, 12) == (64, 64, 191, 191)  # the central 127 px of 255
    assert figures.row_window(0, 24) == (160, -32, 287, 95)


def test_viewer_opens_at_argmax_and_renders_png():
    flat, _ = _masks()
    v = widgets.RowMaskViewer(flat, _score())
    assert v.current == (7, 18)
    assert (v.row.value, v.col.value) == (7, 18)
    png = bytes(v.image.value)
    assert png.startswith(b"\x89PNG")
    assert "score 0.9000" in v.label.value


def test_viewer_sliders_drive_show():
    flat, grid = _masks()
    v = widgets.RowMaskViewer(flat, _score())
    before = bytes(v.image.value)
    v.row.value = 3
    assert v.current == (3, 18)
    after_row = bytes(v.image.value)
    assert after_row != before
    v.col.value = 0
    assert v.current == (3, 0)
    assert bytes(v.image.value) != after_row
    n = int((1 / (1 + np.exp(-grid[3, 0])) > 0.5).sum())
    assert f"mask pixels &gt; 0.5: {n} of 3969" in v.label.value


def test_viewer_show_moves_sliders_and_renders_once(monkeypatch):
    flat, _ = _masks()
    v = widgets.RowMaskViewer(flat, _score())
    calls = []
    orig = v.render
    monkeypatch.setattr(v, "render", lambda: calls.append(1) or orig())
    v.show(20, 5)
    assert (v.row.value, v.col.value) == (20, 5) and v.current == (20, 5)
    assert len(calls) == 1, "moving both sliders from show() must not redraw again"
    with pytest.raises(ValueError):
        v.show(25, 0)


def test_viewer_rendered_mask_panel_matches_logits():
    flat, grid = _masks()
    v = widgets.RowMaskViewer(flat, _score())
    v.show(12, 12)
    img = v.render()
    assert img.shape == (255, 2 * 255 + 6, 3) and img.dtype == np.uint8
    mask_panel = img[:, 255 + 6:]
    # the centre of the panel is inside the disc (bright), a corner outside (dark)
    prob = 1 / (1 + np.exp(-grid[12, 12]))
    assert prob[30, 30] > 0.99 and mask_panel[122, 122].mean() > 240
    assert prob[0, 0] < 0.01 and mask_panel[1, 1].max() < 10


def test_viewer_with_crop_draws_in_the_row_window():
    flat, _ = _masks()
    crop = np.full((255, 255, 3), 40, np.uint8)
    v = widgets.RowMaskViewer(torch.from_numpy(flat), torch.from_numpy(_score()), frame_crop=crop)
    v.show(12, 12)
    img = v.render()
    assert img.shape == (255, 3 * 255 + 2 * 6, 3)
    panel = img[:, 2 * (255 + 6):].astype(int)
    # red tint inside the RoW's window (centre of the crop), untouched far outside it
    assert panel[127, 127, 0] > panel[127, 127, 1] + 50
    assert (panel[5, 5] == 40).all()
    v.show(0, 0)  # an edge RoW: its window sticks out of the crop, still renders
    assert bytes(v.image.value).startswith(b"\x89PNG")


def test_viewer_rejects_bad_inputs():
    flat, _ = _masks()
    with pytest.raises(ValueError):
        widgets.RowMaskViewer(flat, np.zeros((24, 24)))
    with pytest.raises(ValueError):
        widgets.RowMaskViewer(flat, _score(), frame_crop=np.zeros((255, 255), np.uint8))


def test_static_figures():
    from matplotlib.figure import Figure

    flat, _ = _masks()
    v = widgets.RowMaskViewer(flat, _score(), frame_crop=np.zeros((255, 255, 3), np.uint8))
    fig = v.figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    grid = figures.row_mask_grid(flat, [0, 12, 24], [0, 12, 24], score=_score())
    assert isinstance(grid, Figure) and len(grid.axes) == 9
    strip = figures.image_strip([np.zeros((5, 5)), np.zeros((5, 5, 3), np.uint8)], ["a", "b"])
    assert len(strip.axes) == 2
    fig.canvas.draw()  # renders under Agg without pyplot


def test_feature_shapes_table():
    t = figures.feature_shapes_table(
        {"p3": [(1, 1024, 15, 15), torch.zeros(1, 1024, 31, 31)], "zf": [(1, 256, 7, 7), None]},
        ["exemplar 127", "search 255"],
    )
    lines = t.splitlines()
    assert lines[0].split(" | ") == ["name", "exemplar 127     ", "search 255"]
    assert set(lines[1]) <= {"-", "+"}
    assert "(1, 1024, 31, 31)" in lines[2] and lines[3].rstrip().endswith("-")


# -- TrackerStepper -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def step_records():
    from siammask_edu import testing
    from siammask_edu.data import make_synthetic_sequence
    from siammask_edu.inspection import trace_tracker
    from siammask_edu.tracker import Tracker

    seq = make_synthetic_sequence(4, size=(120, 160))
    return trace_tracker(Tracker(testing.tiny_model(seed=5)), list(seq.frames), seq.box)


def test_stepper_slider_drives_show(step_records):
    s = widgets.TrackerStepper(step_records, threshold=0.35)
    assert s.index == 0 and s.slider.max == len(step_records) - 1
    first = bytes(s.image.value)
    assert first.startswith(b"\x89PNG")
    assert f"frame {step_records[0].index}" in s.label.value
    s.slider.value = 2
    assert s.index == 2
    third = bytes(s.image.value)
    assert third.startswith(b"\x89PNG") and third != first
    d = step_records[2].decision
    assert f"RoW (row={d.row}, col={d.col})" in s.label.value
    s.show(1)
    assert s.slider.value == 1 and s.index == 1
    with pytest.raises(ValueError):
        s.show(len(step_records))


def test_stepper_score_map_toggle_changes_the_score_panel(step_records):
    s = widgets.TrackerStepper(step_records)
    before = s.render()
    png = bytes(s.image.value)
    s.score_map.value = "fg"
    after = s.render()
    assert bytes(s.image.value) != png
    gap = 255 + 6
    score_before, score_after = before[:, gap:gap + 255], after[:, gap:gap + 255]
    assert not np.array_equal(score_before, score_after)
    # the crop panel does not depend on the score map
    np.testing.assert_array_equal(before[:, :255], after[:, :255])


def test_render_step_panels(step_records):
    rec = step_records[0]
    img = widgets.render_step(rec)
    h, w = rec.frame.shape[:2]
    assert img.shape == (255, 3 * (255 + 6) + round(w * 255 / h), 3) and img.dtype == np.uint8
    # the score panel marks the chosen RoW in red
    d = rec.decision
    cell = 255 / rec.pscore.shape[1]
    y, x = round(d.row * cell), round(d.col * cell) + 255 + 6
    assert tuple(img[y + 1, x + 1]) == (255, 0, 0) or tuple(img[y, x]) == (255, 0, 0)
    with pytest.raises(ValueError):
        widgets.render_step(rec, "logits")


def test_stepper_rejects_bad_inputs_and_has_a_static_figure(step_records):
    from matplotlib.figure import Figure

    with pytest.raises(ValueError):
        widgets.TrackerStepper([])
    with pytest.raises(ValueError):
        widgets.TrackerStepper(step_records, score_map="nope")
    fig = widgets.TrackerStepper(step_records).figure([0, 2])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    fig.canvas.draw()
