"""Synthetic sequences with exact ground truth, and the samples shipped in ``data_samples/``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siammask_edu import data
from siammask_edu import io as sio


@pytest.fixture(scope="module")
def seq():
    return data.make_synthetic_sequence(n_frames=12, size=(120, 160), seed=3)


def test_shapes_dtypes_and_first_box(seq):
    assert seq.frames.shape == (12, 120, 160, 3) and seq.frames.dtype == np.uint8
    assert seq.masks.shape == (12, 120, 160) and seq.masks.dtype == bool
    assert seq.boxes.shape == (12, 4) and seq.polygons.shape == (12, 4, 2) and len(seq) == 12
    ys, xs = np.nonzero(seq.masks[0])
    assert seq.box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    for m, b in zip(seq.masks, seq.boxes):
        assert tuple(b) == cv2.boundingRect(m.astype(np.uint8))


def test_deterministic_and_seed_changes_only_textures(seq):
    again = data.make_synthetic_sequence(n_frames=12, size=(120, 160), seed=3)
    assert np.array_equal(seq.frames, again.frames) and np.array_equal(seq.masks, again.masks)
    other = data.make_synthetic_sequence(n_frames=12, size=(120, 160), seed=4)
    assert np.array_equal(seq.masks, other.masks)
    assert not np.array_equal(seq.frames, other.frames)


def test_masks_are_exact(seq):
    # the area matches the ellipse, and the rotated box encloses the mask
    a0, b0 = 0.15 * 120, 0.085 * 120
    for t in (0, 5, 9):
        s = 1 + 0.25 * np.sin(2 * np.pi * t / 12)
        assert seq.masks[t].sum() == pytest.approx(np.pi * a0 * b0 * s * s, rel=0.03)
        poly = seq.polygons[t]
        assert cv2.contourArea(poly) == pytest.approx(4 * a0 * b0 * s * s, rel=1e-4)
        ys, xs = np.nonzero(seq.masks[t])
        inside = [cv2.pointPolygonTest(poly, (float(x) + 0.5, float(y) + 0.5), False)
                  for x, y in zip(xs[::7], ys[::7])]
        assert min(inside) >= 0
    # the background is static: pixels outside both masks are identical
    both_out = ~seq.masks[0] & ~seq.masks[7]
    assert np.array_equal(seq.frames[0][both_out], seq.frames[7][both_out])
    # and the object's pixels differ from the background there
    obj = seq.masks[7] & ~seq.masks[0]
    assert np.abs(seq.frames[7][obj].astype(int) - seq.frames[0][obj]).mean() > 30


def test_object_moves_turns_and_scales(seq):
    centres = np.array([seq.polygons[t].mean(0) for t in range(12)])
    assert np.linalg.norm(centres[3] - centres[0]) > 20
    edge = seq.polygons[:, 1] - seq.polygons[:, 0]
    angles = np.degrees(np.arctan2(edge[:, 1], edge[:, 0]))
    assert np.all(np.diff(angles) > 0) and angles[-1] == pytest.approx(90 * 11 / 12, abs=1e-3)
    areas = seq.masks.sum((1, 2))
    assert areas.max() > 1.5 * areas.min()


def test_rectangle_shape_fills_its_polygon():
    r = data.make_synthetic_sequence(n_frames=3, size=(100, 120), shape="rectangle", turns=0.0)
    x, y, w, h = r.box
    assert r.masks[0].sum() == w * h  # unrotated: the mask is its box


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        data.make_synthetic_sequence(shape="star")
    with pytest.raises(ValueError, match="n_frames"):
        data.make_synthetic_sequence(n_frames=0)
    with pytest.raises(ValueError, match="leave the frame"):
        data.make_synthetic_sequence(axes=(0.4, 0.3))


def test_save_and_reload(tmp_path):
    root = data.save_synthetic_sequence(tmp_path / "s", frame_format="png", n_frames=3,
                                        size=(60, 80), seed=1)
    seq = data.make_synthetic_sequence(n_frames=3, size=(60, 80), seed=1)
    src = sio.FrameSource(root / "frames")
    assert src.names == ["00000", "00001", "00002"]
    assert np.array_equal(np.stack(list(src)), seq.frames)  # png: lossless
    masks = [sio.read_image(p)[..., 0] > 0 for p in sio.list_images(root / "masks")]
    assert np.array_equal(np.stack(masks), seq.masks)
    lines = (root / "groundtruth.txt").read_text().splitlines()
    assert len(lines) == 3 and [float(v) for v in lines[0].split(",")] == list(seq.box)
    polys = (root / "groundtruth_polygons.txt").read_text().splitlines()
    assert len(polys) == 3 and len(polys[0].split(",")) == 8


def test_load_shipped_sample_matches_its_recipe():
    assert "synthetic_ellipse" in data.available_samples()
    s = data.load_sample("synthetic_ellipse")
    ref = data.make_synthetic_sequence(n_frames=30, size=(180, 240), seed=0)  # see its README
    assert len(s) == 30 and s.frames[0].shape == (180, 240, 3) and s.frames[0].dtype == np.uint8
    assert np.array_equal(np.stack(s.masks), ref.masks)
    assert s.box == ref.box and np.array_equal(s.boxes, ref.boxes)
    assert np.abs(np.stack(s.frames).astype(int) - ref.frames).mean() < 4  # JPEG noise only
    assert s.path.name == "synthetic_ellipse" and s.fps is None


def test_unknown_sample_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="synthetic_ellipse"):
        data.load_sample("no_such_clip")


def test_bunny_clip_loads_with_its_box_on_the_grey_rabbit():
    """The Big Buck Bunny excerpt (data_samples/bunny, CC BY 3.0, see its README)."""
    s = data.load_sample("bunny")
    video = s.path / "bunny.mp4"
    assert video.is_file() and video.stat().st_size <= 2 * 1024 * 1024
    assert len(s) == 132 and s.fps == pytest.approx(25.0) and s.masks is None
    assert all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for f in s.frames)
    assert s.box == (118.0, 128.0, 146.0, 150.0) and s.boxes.shape == (1, 4)
    x, y, w, h = map(int, s.box)
    assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 360
    # the middle of the box is the grey rabbit, not the saturated green grass around it
    hsv = cv2.cvtColor(s.frames[0], cv2.COLOR_RGB2HSV)
    centre = hsv[y + 2 * h // 5:y + 3 * h // 5, x + 2 * w // 5:x + 3 * w // 5]
    grass = (hsv[..., 0] > 25) & (hsv[..., 0] < 45) & (hsv[..., 1] > 100)
    assert grass.mean() > 0.3 and centre[..., 1].mean() < 0.6 * hsv[..., 1].mean()
    assert not (grass[y + 2 * h // 5:y + 3 * h // 5, x + 2 * w // 5:x + 3 * w // 5]).any()
    # the rabbit steps out and grows: later frames differ from the first
    assert np.abs(s.frames[-1].astype(int) - s.frames[0]).mean() > 10
    readme = (s.path / "README.md").read_text()
    assert "Big Buck Bunny © Blender Foundation | www.bigbuckbunny.org, CC BY 3.0" in readme


def test_sample_frames_and_box():
    assert data.sample_frames("bunny").name == "bunny.mp4"
    assert data.sample_frames("synthetic_ellipse").name == "frames"
    assert data.sample_box("bunny") == data.load_sample("bunny").box
    with pytest.raises(FileNotFoundError, match="no sample named"):
        data.sample_frames("nope")
