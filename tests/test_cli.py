"""``siammask-edu`` command line, run in-process through ``main([...])``.

Most tests inject a fake tracker (``cli._make_tracker``) so that they check the command's
own work (reading, writing, errors) in milliseconds; one test runs the real tracker.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from siammask_edu import cli, data
from siammask_edu import io as sio
from siammask_edu.config import tracker_config
from siammask_edu.testing import skip_missing_data

BOX = "20,20,24,14"


@dataclass(frozen=True)
class _Result:
    mask: np.ndarray
    polygon: np.ndarray
    box: tuple
    score: float
    lost: bool = False


class FakeTracker:
    """Moves the box one pixel right per frame; the mask fills the box."""

    instances: list = []

    def __init__(self, checkpoint, config, device, precision="fp32", box_strategy=None,
                 fail_at=None):
        assert isinstance(config, str)  # a preset name: from_pretrained's thresholds apply
        cfg = tracker_config(config)
        self.config = cfg if box_strategy is None else cfg.replace(box_strategy=box_strategy)
        self.checkpoint, self.device = checkpoint, device
        self.precision = precision
        self.fail_at = fail_at
        self.frames = 0
        FakeTracker.instances.append(self)

    def init(self, frame, box):
        assert frame.dtype == np.uint8 and frame.ndim == 3
        self.box, self.hw = list(box), frame.shape[:2]

    def track(self, frame):
        self.frames += 1
        if self.frames == self.fail_at:
            raise KeyboardInterrupt
        self.box[0] += 1
        x, y, w, h = self.box
        mask = np.zeros(self.hw, bool)
        mask[int(y):int(y + h), int(x):int(x + w)] = True
        poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
        score = 0.5 + 0.1 * self.frames
        return _Result(mask, poly, tuple(self.box), score, lost=score < 0.75)


@pytest.fixture()
def frames_dir(tmp_path):
    return data.save_synthetic_sequence(tmp_path / "seq", n_frames=5, size=(60, 80)) / "frames"


@pytest.fixture()
def ckpt(tmp_path):
    p = tmp_path / "model.pth"
    p.write_bytes(b"not read by the fake tracker")
    return p


@pytest.fixture()
def fake(monkeypatch):
    FakeTracker.instances = []
    monkeypatch.setattr(cli, "_make_tracker", FakeTracker)
    return FakeTracker


def _track(src, out, *extra):
    return cli.main(["track", str(src), "--box", BOX, "--out", str(out), "--quiet", *extra])


def test_track_writes_all_outputs(frames_dir, ckpt, fake, tmp_path, capsys):
    out = tmp_path / "out"
    assert _track(frames_dir, out, "--checkpoint", str(ckpt), "--config", "vot") == 0
    assert "tracked 4 frames in" in capsys.readouterr().out
    names = sorted(p.name for p in (out / "masks").iterdir())
    assert names == [f"{i:05d}.png" for i in range(5)]
    m0 = cv2.imread(str(out / "masks" / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert m0.shape == (60, 80) and (m0[20:34, 20:44] == 255).all() and m0.sum() == 255 * 24 * 14
    m4 = cv2.imread(str(out / "masks" / "00004.png"), cv2.IMREAD_UNCHANGED)
    assert (m4[20:34, 24:48] == 255).all() and m4[20, 23] == 0  # moved 4 px
    polys = (out / "polygons.txt").read_text().splitlines()
    assert len(polys) == 5 and all(len(p.split(",")) == 8 for p in polys)
    assert polys[0] == "20.0000,20.0000,44.0000,20.0000,44.0000,34.0000,20.0000,34.0000"
    boxes = (out / "boxes.txt").read_text().splitlines()
    assert boxes[0] == "20.0000,20.0000,24.0000,14.0000"
    assert boxes[4] == "24.0000,20.0000,24.0000,14.0000"
    video = sio.FrameSource(out / "overlay.mp4")
    assert len(list(video)) == 5 and video.size == (60, 80)
    s = json.loads((out / "summary.json").read_text())
    assert s["frames"] == 5 and s["frames_tracked"] == 4 and s["config"]["preset"] == "vot"
    assert s["config"]["lr"] == 0.25 and s["checkpoint"] == str(ckpt)
    assert s["scores"] == pytest.approx([0.6, 0.7, 0.8, 0.9]) and not s["interrupted"]
    assert s["lost_frames"] == [1, 2] and s["torch_threads"] >= 1
    assert {"torch", "numpy", "opencv", "siammask_edu", "python"} <= set(s["versions"])
    assert [p.name for p in out.rglob(".*")] == []  # no temporary files left
    (t,) = fake.instances
    assert t.config.name == "vot" and t.device == "cpu" and t.checkpoint == str(ckpt)


def test_options_max_frames_box_strategy_no_video(frames_dir, ckpt, fake, tmp_path):
    out = tmp_path / "o"
    assert _track(frames_dir, out, "--checkpoint", str(ckpt), "--max-frames", "3",
                  "--box-strategy", "minmax", "--no-video") == 0
    assert len(list((out / "masks").iterdir())) == 3 and not (out / "overlay.mp4").exists()
    assert fake.instances[0].config.box_strategy == "minmax"
    assert json.loads((out / "summary.json").read_text())["config"]["box_strategy"] == "minmax"


def test_ctrl_c_keeps_what_was_tracked(frames_dir, ckpt, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_make_tracker", lambda *a, **k: FakeTracker(*a, **k, fail_at=3))
    out = tmp_path / "o"
    assert _track(frames_dir, out, "--checkpoint", str(ckpt)) == 130
    assert len((out / "boxes.txt").read_text().splitlines()) == 3  # frames 0, 1, 2
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    assert len(list(sio.FrameSource(out / "overlay.mp4"))) == 3


def _corrupt_frame(frames_dir, name):
    (frames_dir / name).write_bytes(b"\xff\xd8 this is not a jpeg")


@pytest.mark.parametrize("case, pattern", [
    ("missing_source", "does not exist"),
    ("bad_box_syntax", "x,y,w,h"),
    ("bad_box_words", "x,y,w,h"),
    ("box_zero_size", "width and height"),
    ("box_outside", "outside the 80x60 frame"),
    ("no_box", "--box x,y,w,h is required"),
    ("missing_checkpoint", "does not exist"),
    ("corrupt_first_frame", "00000.jpg"),
    ("corrupt_later_frame", "00003.jpg"),
    ("bad_config", "invalid choice"),
    ("bad_max_frames", "integer >= 1"),
])
def test_bad_input_one_line_and_nonzero_exit(case, pattern, frames_dir, ckpt, fake, tmp_path,
                                             capsys):
    src, box, extra = frames_dir, BOX, ["--checkpoint", str(ckpt)]
    if case == "missing_source":
        src = tmp_path / "nowhere"
    elif case.startswith("bad_box") or case in ("box_zero_size", "box_outside"):
        box = {"bad_box_syntax": "1,2,3", "bad_box_words": "a,b,c,d",
               "box_zero_size": "1,2,0,5", "box_outside": "75,10,20,20"}[case]
    elif case == "no_box":
        box = None
    elif case == "missing_checkpoint":
        extra = ["--checkpoint", str(tmp_path / "absent.pth")]
    elif case.startswith("corrupt"):
        _corrupt_frame(frames_dir, "00000.jpg" if "first" in case else "00003.jpg")
    elif case == "bad_config":
        extra += ["--config", "otb"]
    elif case == "bad_max_frames":
        extra += ["--max-frames", "0"]
    box_args = ["--box", box] if box is not None else []
    rc = cli.main(["track", str(src), *box_args, "--out", str(tmp_path / "o"), "--quiet",
                   *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert pattern in err


def test_sample_name_as_source_and_shipped_weights_by_default(fake, tmp_path, capsys):
    """``track bunny`` reads the shipped clip with its first groundtruth box; without
    ``--checkpoint`` the tracker is built on the shipped weights (``checkpoint=None``)."""
    sample = data.load_sample("bunny")
    rc = cli.main(["track", "bunny", "--out", str(tmp_path / "o"), "--max-frames", "3",
                   "--quiet", "--no-video"])
    assert rc == 0, capsys.readouterr().err
    t = fake.instances[-1]
    assert t.checkpoint is None and t.box[1:] == list(sample.box)[1:] and t.frames == 2
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["init_box_xywh"] == list(sample.box) and s["source"].endswith("bunny.mp4")
    assert s["checkpoint"] == "lite (shipped)"


def test_shipped_weights_run_with_their_calibrated_thresholds(tmp_path, capsys):
    """Without ``--checkpoint`` the real tracker gets the ``seg_thr`` and ``lost_score``
    stored in the shipped weights (a ``TrackerConfig`` object would have replaced them by
    the preset's); ``--box-strategy`` still applies."""
    from siammask_edu.checkpoint import read_state_file
    from siammask_edu.tracker import pretrained_path

    try:
        extra = read_state_file(pretrained_path("lite")).get("extra") or {}
    except FileNotFoundError as exc:
        pytest.skip(f"no shipped weights in this build: {exc}")
    if "seg_thr" not in extra or "lost_score" not in extra:
        pytest.skip("the shipped weights carry no calibrated thresholds")
    out = tmp_path / "o"
    rc = cli.main(["track", "bunny", "--out", str(out), "--max-frames", "2", "--quiet",
                   "--no-video", "--box-strategy", "minmax"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert s["lost_score"] == pytest.approx(extra["lost_score"])
    assert s["config"]["seg_thr"] == pytest.approx(extra["seg_thr"])
    assert s["config"]["box_strategy"] == "minmax" and s["config"]["preset"] == "davis"


def test_show_without_display_is_a_clear_error(frames_dir, ckpt, fake, tmp_path, monkeypatch,
                                               capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(cli.sys, "platform", "linux")
    assert _track(frames_dir, tmp_path / "o", "--checkpoint", str(ckpt), "--show") == 2
    assert "--show needs a display" in capsys.readouterr().err
    if "GUI:                           NONE" in cv2.getBuildInformation():
        monkeypatch.setenv("DISPLAY", ":0")
        assert _track(frames_dir, tmp_path / "o", "--checkpoint", str(ckpt), "--show") == 2
        assert "GUI support" in capsys.readouterr().err


def test_parser_entry_points(capsys):
    assert cli.main([]) == 2
    assert "track" in capsys.readouterr().err
    assert cli.main(["--version"]) == 0
    assert cli.main(["track", "--help"]) == 0
    assert "--box-strategy" in capsys.readouterr().out
    assert cli.parse_box(" 1, 2.5,3,4 ") == (1.0, 2.5, 3.0, 4.0)


# -- the real tracker ----------------------------------------------------------------------


@pytest.fixture()
def real_tracker_checkpoint(seeded_checkpoint):
    pytest.importorskip("siammask_edu.tracker", reason="siammask_edu.tracker not written yet")
    if not seeded_checkpoint.is_file():
        skip_missing_data(f"seeded checkpoint fixture absent: {seeded_checkpoint.name}")
    return seeded_checkpoint


def test_corrupt_checkpoint_with_real_loader(frames_dir, tmp_path, capsys):
    pytest.importorskip("siammask_edu.tracker", reason="siammask_edu.tracker not written yet")
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    assert _track(frames_dir, tmp_path / "o", "--checkpoint", str(bad)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "truncated.pth" in err and "Traceback" not in err


def test_end_to_end_with_real_tracker(real_tracker_checkpoint, tmp_path, capsys):
    """3 frames of the shipped synthetic sample through Tracker.from_checkpoint (seeded,
    untrained weights: the output is checked for form, not for accuracy)."""
    src = data.sample_path("synthetic_ellipse") / "frames"
    box = ",".join(f"{v:g}" for v in data.load_sample("synthetic_ellipse").box)
    out = tmp_path / "real"
    rc = cli.main(["track", str(src), "--box", box, "--checkpoint", str(real_tracker_checkpoint),
                   "--out", str(out), "--max-frames", "3", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert "tracked 2 frames in" in capsys.readouterr().out
    masks = sorted((out / "masks").iterdir())
    assert len(masks) == 3
    m = cv2.imread(str(masks[-1]), cv2.IMREAD_UNCHANGED)
    assert m.shape == (180, 240) and set(np.unique(m)) <= {0, 255}
    polys = np.loadtxt(out / "polygons.txt", delimiter=",")
    boxes = np.loadtxt(out / "boxes.txt", delimiter=",")
    assert polys.shape == (3, 8) and boxes.shape == (3, 4) and np.isfinite(polys).all()
    s = json.loads((out / "summary.json").read_text())
    assert s["frames_tracked"] == 2 and len(s["scores"]) == 2
    assert all(0.0 <= v <= 1.0 for v in s["scores"])
    assert len(list(sio.FrameSource(out / s["video"]))) == 3


def test_rerun_into_used_folder_needs_overwrite(frames_dir, ckpt, fake, tmp_path, capsys):
    out = tmp_path / "o"
    assert _track(frames_dir, out, "--checkpoint", str(ckpt), "--no-video") == 0
    assert len(list((out / "masks").iterdir())) == 5
    capsys.readouterr()
    assert _track(frames_dir, out, "--checkpoint", str(ckpt), "--max-frames", "2") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert len(list((out / "masks").iterdir())) == 5  # nothing lost
    assert _track(frames_dir, out, "--checkpoint", str(ckpt), "--max-frames", "2",
                  "--no-video", "--overwrite") == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["00000.png", "00001.png"]


def test_negative_box_coordinate_is_a_box_not_an_option(frames_dir, ckpt, fake, tmp_path):
    out = tmp_path / "neg"
    rc = cli.main(["track", str(frames_dir), "--box", "-4,20,30,14", "--out", str(out),
                   "--checkpoint", str(ckpt), "--quiet", "--no-video"])
    assert rc == 0
    assert (out / "boxes.txt").read_text().splitlines()[0].startswith("-4.0000,20.0000")


# -- a run keeps everything it tracked (issue 13, item 1) ----------------------------------------


@pytest.fixture()
def long_dir(tmp_path):
    return data.save_synthetic_sequence(tmp_path / "long", n_frames=15, size=(60, 80)) / "frames"


def _hidden(out):
    return sorted(p.name for p in out.rglob(".*"))


@pytest.mark.parametrize("bad", ["corrupt", "other_size"])
def test_bad_frame_stops_but_keeps_every_output_before_it(bad, long_dir, ckpt, fake, tmp_path,
                                                          capsys):
    if bad == "corrupt":
        _corrupt_frame(long_dir, "00010.jpg")
    else:
        sio.write_image(long_dir / "00010.jpg", np.zeros((50, 80, 3), np.uint8))
    out = tmp_path / "o"
    assert _track(long_dir, out, "--checkpoint", str(ckpt)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "00010.jpg" in err and "--on-bad-frame skip" in err
    assert len((out / "boxes.txt").read_text().splitlines()) == 10  # frames 0-9
    assert len((out / "polygons.txt").read_text().splitlines()) == 10
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{i:05d}.png" for i in range(10)]
    assert len(list(sio.FrameSource(out / "overlay.mp4"))) == 10
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] is False and s["frames"] == 10 and s["frames_tracked"] == 9
    assert s["stopped"]["frame"] == 10 and s["stopped"]["name"] == "00010"
    assert "00010.jpg" in s["stopped"]["reason"]
    assert _hidden(out) == []


def test_on_bad_frame_skip_records_it_and_tracks_on(long_dir, ckpt, fake, tmp_path, capsys):
    _corrupt_frame(long_dir, "00010.jpg")
    sio.write_image(long_dir / "00012.jpg", np.zeros((50, 80, 3), np.uint8))
    out = tmp_path / "o"
    assert _track(long_dir, out, "--checkpoint", str(ckpt), "--on-bad-frame", "skip") == 0
    end = capsys.readouterr().out
    assert "tracked 12 frames" in end and "2 unreadable frame(s) skipped" in end
    boxes = (out / "boxes.txt").read_text().splitlines()
    assert len(boxes) == 15 and boxes[10] == boxes[12] == "nan,nan,nan,nan"
    assert len((out / "polygons.txt").read_text().splitlines()) == 15
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert "00010.png" not in masks and "00012.png" not in masks and len(masks) == 13
    assert len(list(sio.FrameSource(out / "overlay.mp4"))) == 15
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] is True and s["frames"] == 15 and s["frames_tracked"] == 12
    assert [u["frame"] for u in s["unreadable_frames"]] == [10, 12]
    assert "80x50" in s["unreadable_frames"][1]["reason"]
    assert fake.instances[0].frames == 12


def test_incomplete_run_message_and_overwrite_clears_temporaries(long_dir, ckpt, fake, tmp_path,
                                                                 capsys):
    _corrupt_frame(long_dir, "00010.jpg")
    out = tmp_path / "o"
    assert _track(long_dir, out, "--checkpoint", str(ckpt)) == 2
    (out / ".overlay.0badf00d.tmp.mp4").write_bytes(b"left by a killed run")
    (out / "masks" / ".00011.deadbeef.tmp.png").write_bytes(b"x")
    capsys.readouterr()
    assert _track(long_dir, out, "--checkpoint", str(ckpt)) == 2
    err = capsys.readouterr().err
    assert "incomplete run" in err and "frame 10" in err and "--overwrite" in err
    assert "--on-bad-frame skip" in err
    assert _track(long_dir, out, "--checkpoint", str(ckpt), "--overwrite", "--on-bad-frame",
                  "skip", "--no-video") == 0
    assert _hidden(out) == [] and not (out / "overlay.mp4").exists()
    assert json.loads((out / "summary.json").read_text())["complete"] is True


class _Snooper(FakeTracker):
    """Looks at the output folder while the run goes on (at its 4th tracked frame)."""

    seen: typing.ClassVar[dict] = {}

    def track(self, frame):
        if self.frames == 4:
            out = self.out
            _Snooper.seen = {"boxes": (out / "boxes.txt").read_text().splitlines(),
                             "summary": json.loads((out / "summary.json").read_text())}
        return super().track(frame)


def test_results_are_written_as_the_run_goes(long_dir, ckpt, monkeypatch, tmp_path):
    out = tmp_path / "o"
    _Snooper.out = out
    monkeypatch.setattr(cli, "_make_tracker", _Snooper)
    monkeypatch.setattr(cli, "FLUSH_SECONDS", 0.0)
    assert _track(long_dir, out, "--checkpoint", str(ckpt)) == 0
    assert len(_Snooper.seen["boxes"]) == 5  # frames 0-4 were on disk at frame 5
    s = _Snooper.seen["summary"]
    assert s["complete"] is False and s["status"] == "running" and s["frames"] == 5
    assert json.loads((out / "summary.json").read_text())["complete"] is True


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM") or __import__("os").name == "nt",
                    reason="POSIX signals")
def test_sigterm_ends_the_run_incomplete_with_its_outputs(frames_dir, ckpt, monkeypatch, tmp_path,
                                                         capsys):
    import os
    import signal

    class Killed(FakeTracker):
        def track(self, frame):
            if self.frames == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().track(frame)

    def not_handled(signum, frame):  # without the command's own handler: fail, not die
        raise AssertionError("SIGTERM reached the default handler")

    monkeypatch.setattr(cli, "_make_tracker", Killed)
    previous = signal.signal(signal.SIGTERM, not_handled)
    try:
        out = tmp_path / "o"
        rc = _track(frames_dir, out, "--checkpoint", str(ckpt))
        assert signal.getsignal(signal.SIGTERM) is not_handled  # handler restored
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert rc == 128 + signal.SIGTERM
    assert "SIGTERM" in capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] is False and "SIGTERM" in s["stopped"]["reason"]
    assert s["stopped"]["frame"] == 3 and s["frames"] == 3
    assert len((out / "boxes.txt").read_text().splitlines()) == 3
    assert len(list(sio.FrameSource(out / "overlay.mp4"))) == 3


def test_tracker_error_mid_run_keeps_outputs(frames_dir, ckpt, monkeypatch, tmp_path):
    class Broken(FakeTracker):
        def track(self, frame):
            if self.frames == 2:
                raise RuntimeError("CUDA out of memory")
            return super().track(frame)

    monkeypatch.setattr(cli, "_make_tracker", Broken)
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="out of memory"):
        _track(frames_dir, out, "--checkpoint", str(ckpt))
    s = json.loads((out / "summary.json").read_text())
    assert s["complete"] is False and s["stopped"]["frame"] == 3
    assert "RuntimeError: CUDA out of memory" in s["stopped"]["reason"]
    assert len((out / "boxes.txt").read_text().splitlines()) == 3 and _hidden(out) == []


def test_frame_decoded_with_warnings_is_reported(frames_dir, ckpt, fake, tmp_path, capsys):
    from test_io import _flipped_jpeg

    (frames_dir / "00002.jpg").write_bytes(_flipped_jpeg())
    out = tmp_path / "o"
    assert _track(frames_dir, out, "--checkpoint", str(ckpt)) == 0
    cap = capsys.readouterr()
    assert "1 frame(s) decoded with warnings" in cap.out and "00002" in cap.out
    s = json.loads((out / "summary.json").read_text())
    (w,) = s["decoded_with_warnings"]
    assert w["frame"] == 2 and w["name"] == "00002" and "Corrupt JPEG data" in w["warnings"][0]


# -- rough edges of the command line (issue 13, item 9) ------------------------------------------


@pytest.mark.parametrize("with_box", [False, True])
def test_misspelled_sample_is_suggested_and_samples_listed(with_box, fake, tmp_path, capsys):
    box = ["--box", "1,1,4,4"] if with_box else []
    assert cli.main(["track", "bunnyy", *box, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "did you mean 'bunny'?" in err and "synthetic_ellipse" in err
    assert "--box x,y,w,h is required" not in err
    with pytest.raises(FileNotFoundError, match="did you mean 'bunny'"):  # the Python API too
        data.sample_path("bunnyy")


def _walk(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), action, sub_help(parser, action)


def sub_help(parser, action):
    return parser._get_formatter()._expand_help(action) if action.help else ""


def test_every_option_has_help_and_shows_its_default():
    problems = []
    for where, action, text in _walk(cli.build_parser()):
        name = "/".join(action.option_strings) or action.dest
        if not text.strip():
            problems.append(f"{where} {name}: no help")
        elif action.default not in (None, False) and "default" not in text.lower():
            problems.append(f"{where} {name}: default {action.default!r} not shown")
    assert problems == []
    assert {w for w, _, _ in _walk(cli.build_parser())} >= {
        "track", "bench", "eval davis", "eval vot", "benchmark davis", "benchmark vot", "train"}


def test_bench_prints_one_table_including_tracks_configuration(monkeypatch, capsys):
    from siammask_edu import bench

    def fake_row(spec):
        row = {k: spec[k] for k in ("kind", "preset", "threads", "path", "precision")}
        row.update({f"{k}_median_ms": 1.0 for k in bench.SECTIONS})
        row.update(total_median_ms=5.0, fps=200.0, cpu_ms_per_frame=5.0, peak_rss_mib=100.0)
        return row

    monkeypatch.setattr(bench, "run_isolated", fake_row)
    assert cli.main(["bench"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert sum(ln.startswith("| preset") for ln in lines) == 1  # one header
    rows = [ln for ln in lines if not ln.startswith(("| preset", "|---"))]
    assert len(rows) == len(set(rows))  # each row once
    track_rows = [ln for ln in rows if "| lite |" in ln and "fold_all" in ln and "fp32" in ln]
    assert track_rows and all(ln.endswith("| yes |") for ln in track_rows)
    assert all(not ln.endswith("| yes |") for ln in rows if ln not in track_rows)
    assert "`siammask-edu track` runs preset lite, path fold_all" in out
