"""Tests of siammask_edu.anchors: released anchor table and cosine window."""

from __future__ import annotations

import numpy as np
import pytest

from siammask_edu.anchors import (
    anchor_index,
    anchor_shapes,
    anchors_for,
    cosine_window,
    generate_anchors,
    unravel_anchor_index,
)
from siammask_edu.config import TrackerConfig


def test_anchor_shapes_use_integer_truncation():
    shapes = anchor_shapes()
    assert shapes.dtype == np.float32
    assert shapes.tolist() == [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]


def test_anchor_table_layout():
    a = generate_anchors()
    assert a.shape == (3125, 4) and a.dtype == np.float32
    assert a[0].tolist() == [-96, -96, 104, 32]
    assert a[1562].tolist() == [0, 0, 64, 64]  # anchor 2, centre cell
    assert a[3124].tolist() == [96, 96, 32, 96]
    # flat index a*625 + r*25 + c: x follows the column, y the row
    n = anchor_index(3, 4, 7)
    assert n == 3 * 625 + 4 * 25 + 7
    assert a[n].tolist() == [-96 + 8 * 7, -96 + 8 * 4, 40, 80]
    assert unravel_anchor_index(n) == (3, 4, 7)


def test_window_is_tiled_hanning():
    w = cosine_window()
    assert w.shape == (3125,) and w.dtype == np.float64
    grid = w.reshape(5, 25, 25)
    assert np.array_equal(grid[0], grid[4])
    assert grid[0, 12, 12] == 1.0 and grid[0, 0].max() == 0.0 and grid[0, :, 24].max() == 0.0
    assert np.array_equal(grid[1], np.outer(np.hanning(25), np.hanning(25)))
    assert np.array_equal(cosine_window(windowing="uniform"), np.ones(3125))
    with pytest.raises(ValueError):
        cosine_window(windowing="gauss")


def test_anchors_for_config():
    a, w = anchors_for(TrackerConfig.davis())
    assert np.array_equal(a, generate_anchors()) and np.array_equal(w, cosine_window())


def test_matches_released_tables(fixtures_dir):
    d = np.load(fixtures_dir / "track_car-shadow_sharp_davis.npz")
    a, w = anchors_for(TrackerConfig.davis())
    assert a.dtype == d["anchor"].dtype and np.array_equal(a, d["anchor"])
    assert w.dtype == d["window"].dtype and np.array_equal(w, d["window"])
