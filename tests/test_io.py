"""Readers and atomic writers of ``siammask_edu.io``."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from siammask_edu import io as sio


def _rgb(h=12, w=16, color=(255, 0, 0)):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = color
    return img


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# -- reading -------------------------------------------------------------------------------


def test_folder_natural_order_extensions_and_rgb(tmp_path):
    colors = {"10.png": (0, 0, 255), "2.png": (0, 255, 0), "1.bmp": (255, 0, 0),
              "3.JPG": (128, 128, 128)}
    for name, c in colors.items():
        sio.write_image(tmp_path / name.lower(), _rgb(color=c))
    os.rename(tmp_path / "3.jpg", tmp_path / "3.JPG")
    (tmp_path / "notes.txt").write_text("not an image")
    src = sio.FrameSource(tmp_path)
    assert src.kind == "folder" and len(src) == 4 and src.size == (12, 16) and src.fps is None
    assert src.names == ["1", "2", "3", "10"]
    frames = list(src)
    assert [tuple(f[0, 0]) for f in frames[:2]] == [(255, 0, 0), (0, 255, 0)]  # RGB, lossless
    assert tuple(frames[3][0, 0]) == (0, 0, 255)
    assert np.abs(frames[2].astype(int) - 128).max() <= 2  # JPEG
    assert len(list(src)) == 4  # a second pass starts again


def test_read_frames_is_lazy_and_checks_the_source_at_call_time(tmp_path, monkeypatch):
    for i in range(5):
        sio.write_image(tmp_path / f"{i}.png", _rgb())
    calls = []
    real = sio.read_image
    monkeypatch.setattr(sio, "read_image", lambda p: calls.append(p) or real(p))
    it = sio.read_frames(tmp_path)
    assert len(calls) == 1  # only the first image, for the size
    next(it)
    next(it)
    assert len(calls) == 3  # one decode per frame requested, nothing ahead
    with pytest.raises(FileNotFoundError, match="missing"):
        sio.read_frames(tmp_path / "missing")


def test_empty_folder_and_camera_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        sio.FrameSource(tmp_path)
    with pytest.raises(ValueError, match="camera 99"):
        sio.FrameSource("99")


@pytest.mark.parametrize("kind", ["garbage", "empty", "jpg_truncated", "png_truncated"])
def test_unreadable_image_names_the_file(tmp_path, kind):
    img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    ext = ".png" if kind == "png_truncated" else ".jpg"
    data = cv2.imencode(ext, img)[1].tobytes()
    bad = tmp_path / f"00001{ext}"
    bad.write_bytes({"garbage": b"hello" * 50, "empty": b""}.get(kind, data[:len(data) - 40]))
    with pytest.raises(ValueError, match="00001"):
        sio.read_image(bad)
    sio.write_image(tmp_path / "00000.png", img)
    frames = sio.read_frames(tmp_path)
    next(frames)
    with pytest.raises(ValueError, match="00001"):
        next(frames)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        sio.read_image(tmp_path / "nope.png")


def test_jpeg_completeness_check():
    img = cv2.GaussianBlur((np.random.default_rng(1).random((64, 64, 3)) * 255)
                           .astype(np.uint8), (0, 0), 2)
    for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
        data = cv2.imencode(".jpg", img, params)[1].tobytes()
        assert sio._jpeg_is_complete(data)
        assert sio._jpeg_is_complete(data + b"trailing bytes after EOI")
        assert not sio._jpeg_is_complete(data[:-2])
        assert not sio._jpeg_is_complete(data[: len(data) // 2])


def test_truncated_jpeg_is_rejected_even_if_opencv_decodes_it(tmp_path, monkeypatch):
    # OpenCV 4 returns a half-grey image for a truncated JPEG instead of None
    data = cv2.imencode(".jpg", _rgb(32, 32))[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[:-30])
    monkeypatch.setattr(sio.cv2, "imdecode", lambda buf, flags: np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="cut.jpg: truncated JPEG"):
        sio.read_image(tmp_path / "cut.jpg")
    (tmp_path / "ok.jpg").write_bytes(data)
    assert sio.read_image(tmp_path / "ok.jpg").shape == (32, 32, 3)


def test_frames_of_different_size_are_rejected(tmp_path):
    sio.write_image(tmp_path / "0.png", _rgb(12, 16))
    sio.write_image(tmp_path / "1.png", _rgb(10, 16))
    with pytest.raises(ValueError, match="1.png"):
        list(sio.FrameSource(tmp_path))


def test_video_roundtrip(tmp_path):
    frames = [_rgb(48, 64, (200, 40, 40)) for _ in range(5)]
    with sio.VideoWriter(tmp_path / "clip.mp4", fps=10) as vw:
        for f in frames:
            vw.write(f)
    assert vw.path == tmp_path / "clip.mp4" and vw.n_frames == 5
    assert _leftovers(tmp_path) == []
    src = sio.FrameSource(vw.path)
    assert src.kind == "video" and len(src) == 5 and src.size == (48, 64) and src.fps == 10
    got = list(src)
    assert len(got) == 5 and got[0].shape == (48, 64, 3)
    assert np.abs(got[2].astype(int) - (200, 40, 40)).mean() < 12  # RGB order kept
    with pytest.raises(ValueError, match="cannot open video"):
        (tmp_path / "bad.mp4").write_bytes(b"x" * 100)
        sio.FrameSource(tmp_path / "bad.mp4")


def test_video_writer_falls_back_and_cleans_up(tmp_path):
    codecs = (("XXXX", ".mp4"), ("MJPG", ".avi"))  # an unknown fourcc first
    with sio.VideoWriter(tmp_path / "o.mp4", fps=5, codecs=codecs) as vw:
        vw.write(_rgb(32, 32))
        with pytest.raises(ValueError, match="16x12"):
            vw.write(_rgb())
    assert vw.fourcc == "MJPG" and vw.path.name == "o.avi"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.avi"]
    with pytest.raises(RuntimeError):
        with sio.VideoWriter(tmp_path / "p.mp4", fps=5) as vw:
            vw.write(_rgb(32, 32))
            raise RuntimeError("crash mid-video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.avi"]


# -- writing -------------------------------------------------------------------------------


def test_mask_png_roundtrip(tmp_path):
    mask = np.zeros((9, 11), bool)
    mask[2:5, 3:9] = True
    sio.write_mask_png(tmp_path / "m.png", mask)
    back = cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and back.shape == (9, 11)
    assert set(np.unique(back)) == {0, 255} and np.array_equal(back == 255, mask)


def test_davis_palette_values():
    pal = sio.davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert [tuple(pal[i]) for i in (0, 1, 2, 3, 4, 255)] == [
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (224, 224, 192)]


def test_palette_png_roundtrip(tmp_path):
    labels = np.zeros((6, 7), np.uint8)
    labels[1:3, 1:4], labels[4:, 5:] = 1, 2
    sio.write_palette_png(tmp_path / "l.png", labels)
    img = Image.open(tmp_path / "l.png")
    assert img.mode == "P"
    assert np.array_equal(np.array(img), labels)
    assert list(img.getpalette()[:9]) == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    with pytest.raises(ValueError, match="0..255"):
        sio.write_palette_png(tmp_path / "x.png", labels.astype(int) + 300)


def test_merge_objects_released_rule():
    p = np.array([[[0.9, 0.2, 0.5, 0.35]],
                  [[0.1, 0.8, 0.5, 0.30]]], np.float32)  # (N=2, H=1, W=4)
    labels = sio.merge_objects(p, thr=0.35)
    # argmax + 1 where max > thr; tie -> first object; max == thr -> background (strict)
    assert labels.tolist() == [[1, 2, 1, 0]] and labels.dtype == np.uint8
    assert sio.merge_objects([np.full((2, 2), -1.0)], 0.3).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="N, H, W"):
        sio.merge_objects(np.zeros((3, 3)), 0.5)


def test_vot_and_box_text_formats(tmp_path):
    poly = np.array([[1, 2], [3, 4], [5, 6], [7, 8.123456]], np.float32)
    sio.write_vot_polygons(tmp_path / "p.txt", [1, poly, poly.ravel(), 2, 0, (1, 2, 3, 4)])
    lines = (tmp_path / "p.txt").read_text().splitlines()
    assert lines[0] == "1" and lines[3:5] == ["2", "0"]
    assert lines[1] == lines[2] == "1.0000,2.0000,3.0000,4.0000,5.0000,6.0000,7.0000,8.1235"
    assert lines[5] == "1.0000,2.0000,3.0000,4.0000"
    sio.write_boxes_xywh(tmp_path / "b.txt", [(1, 2, 3, 4.5), np.array([0.1, 0, 10, 20])])
    assert (tmp_path / "b.txt").read_text() == ("1.0000,2.0000,3.0000,4.5000\n"
                                                "0.1000,0.0000,10.0000,20.0000\n")
    with pytest.raises(ValueError, match="region 1"):
        sio.write_vot_polygons(tmp_path / "p.txt", [poly, np.zeros(5)])
    assert (tmp_path / "p.txt").read_text().splitlines() == lines  # old content kept


def test_one_vot_writer_official_float_format(tmp_path):
    """One VOT result writer, the toolkit's format: float32 then C "%.4f" (vot_float2str)."""
    from siammask_edu.metrics import vot

    assert vot.write_trajectory is sio.write_vot_polygons
    assert vot.format_region(np.array([813.27024, 1.00005, 2, 3])) == sio.format_vot_region(
        [813.27024, 1.00005, 2, 3]) == "813.2703,1.0000,2.0000,3.0000"  # float64: ...2702,1.0001
    regions = [np.array([1.0]), 2, np.arange(6.0), np.array([0.0])]  # codes, a triangle
    sio.write_vot_polygons(tmp_path / "r.txt", regions)
    assert (tmp_path / "r.txt").read_text() == (
        "1\n2\n0.0000,1.0000,2.0000,3.0000,4.0000,5.0000\n0\n")
    assert [r.size for r in vot.read_trajectory(tmp_path / "r.txt")] == [1, 1, 6, 1]
    for bad in ([1, 2], [1, 2, 3], np.zeros(7), []):
        with pytest.raises(ValueError):
            sio.format_vot_region(bad)


def test_one_palette_png_writer(tmp_path):
    """metrics.davis writes label PNGs with io.write_palette_png; io.write_mask_png is 0/255."""
    from siammask_edu.metrics import davis

    assert davis.write_mask_png is sio.write_palette_png
    assert np.array_equal(davis.DAVIS_PALETTE, sio.davis_palette())
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    sio.write_palette_png(tmp_path / "new" / "dir" / "l.png", labels)  # parents created
    assert np.array_equal(davis.read_mask_png(tmp_path / "new" / "dir" / "l.png"), labels)
    with pytest.raises(ValueError, match="integer"):
        sio.write_palette_png(tmp_path / "f.png", labels.astype(np.float32))


def test_one_merge_rule():
    """io.merge_objects is the rule; metrics.davis.merge_objects and multi.merge_masks agree."""
    from types import SimpleNamespace

    from siammask_edu.metrics import davis
    from siammask_edu.multi import merge_masks

    rng = np.random.default_rng(0)
    p = rng.random((3, 5, 6)).astype(np.float32)
    p[1, 0, 0] = p[0, 0, 0]  # a tie goes to the lower object index
    p[:, 1, 1] = np.nan  # NaN maximum -> background
    p[:, 2, 2] = 0.3  # max == thr -> background (strict)
    want = sio.merge_objects(p, 0.3)
    assert want[1, 1] == 0 and want[2, 2] == 0
    assert np.array_equal(davis.merge_objects(p, threshold=0.3), want)
    assert np.array_equal(merge_masks([SimpleNamespace(mask_prob=m) for m in p], 0.3), want)


# -- atomicity -----------------------------------------------------------------------------


def test_atomic_open_failure_mid_write_keeps_old_content(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    for exc in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with sio.atomic_open(target) as fh:
                fh.write("half of the new ")
                raise exc
        assert target.read_text() == "old\n" and _leftovers(tmp_path) == []
    fresh = tmp_path / "fresh.txt"
    with pytest.raises(RuntimeError):
        with sio.atomic_open(fresh) as fh:
            fh.write("partial")
            raise RuntimeError
    assert not fresh.exists()
    with sio.atomic_open(target) as fh:
        fh.write("new\n")
    assert target.read_text() == "new\n" and _leftovers(tmp_path) == []


def test_writers_fail_atomically_when_the_final_move_fails(tmp_path, monkeypatch):
    sio.write_mask_png(tmp_path / "m.png", np.ones((4, 4), bool))
    before = (tmp_path / "m.png").read_bytes()

    def boom(*args):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(sio.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        sio.write_mask_png(tmp_path / "m.png", np.zeros((4, 4), bool))
    with pytest.raises(OSError, match="simulated"):
        sio.write_image(tmp_path / "new.jpg", _rgb())
    assert (tmp_path / "m.png").read_bytes() == before
    assert not (tmp_path / "new.jpg").exists() and _leftovers(tmp_path) == []


def test_atomic_path_requires_a_written_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with sio.atomic_path(tmp_path / "x.png"):
            pass
    assert list(tmp_path.iterdir()) == []


# -- bad frames, decoder warnings, third-party lines (issue 13, items 1 and 9) -----------------


def _flipped_jpeg(h=60, w=80) -> bytes:
    """A JPEG with 8 bytes of its entropy-coded data bit-flipped: it still decodes (into a
    wrong picture) and libjpeg prints "Corrupt JPEG data: ..." on the process's stderr."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 2)
    buf = bytearray(cv2.imencode(".jpg", img)[1].tobytes())
    mid = (buf.find(b"\xff\xda") + len(buf)) // 2
    for k in range(mid, mid + 8):
        buf[k] ^= 0x5A
    return bytes(buf)


def test_decoder_warnings_are_captured_and_reported(tmp_path, capfd):
    (tmp_path / "flip.jpg").write_bytes(_flipped_jpeg())
    with pytest.warns(sio.ImageDecodeWarning, match=r"flip.jpg.*Corrupt JPEG data"):
        img = sio.read_image(tmp_path / "flip.jpg")
    assert img.shape == (60, 80, 3)
    assert "Corrupt JPEG" not in capfd.readouterr().err  # not printed raw by the decoder


def test_read_each_reports_bad_frames_and_goes_on(tmp_path):
    sio.write_image(tmp_path / "00000.png", _rgb(60, 80))
    (tmp_path / "00001.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    sio.write_image(tmp_path / "00002.png", _rgb(50, 80))  # another size
    (tmp_path / "00003.jpg").write_bytes(_flipped_jpeg())
    sio.write_image(tmp_path / "00004.png", _rgb(60, 80))
    got = list(sio.FrameSource(tmp_path).read_each())
    assert [r.index for r in got] == [0, 1, 2, 3, 4]
    assert [r.name for r in got] == ["00000", "00001", "00002", "00003", "00004"]
    assert [r.image is None for r in got] == [False, True, True, False, False]
    assert "00001.jpg" in got[1].error and "not a decodable image" in got[1].error
    assert "00002.png" in got[2].error and "80x50" in got[2].error
    assert got[3].warnings and "Corrupt JPEG data" in got[3].warnings[0]
    assert got[0].warnings == () and got[4].error is None
    with pytest.raises(ValueError, match="00001.jpg"):  # plain iteration still stops
        list(sio.FrameSource(tmp_path))


def test_opening_a_non_video_or_a_missing_camera_prints_no_library_lines(tmp_path, capfd):
    (tmp_path / "bad.mp4").write_bytes(os.urandom(5000))
    with pytest.raises(ValueError, match="cannot open video"):
        sio.FrameSource(tmp_path / "bad.mp4")
    with pytest.raises(ValueError, match="camera 97"):
        sio.FrameSource("97")
    err = capfd.readouterr().err
    assert "moov atom" not in err and "WARN" not in err and err == ""
