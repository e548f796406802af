"""``Tracker(precision=...)``: fp32 (exact, no autocast), bf16 (autocast), fp16 (CUDA only),
passed on by ``from_checkpoint``, :class:`MultiTracker`, ``track``, ``benchmark`` and
``bench``. The exactness of fp32 is the equivalence tests' business (test_tracker_equivalence);
here: validation, where autocast is on and off, float32 outputs, and bf16 against fp32 on a
real sequence."""

from __future__ import annotations

import json
from typing import ClassVar

import cv2
import numpy as np
import pytest
import torch

from siammask_edu import bench, cli, data, testing
from siammask_edu import step as step_mod
from siammask_edu.data import make_synthetic_sequence
from siammask_edu.multi import MultiTracker
from siammask_edu.precision import PRECISIONS, check_precision, to_float32
from siammask_edu.testing import skip_missing_data
from siammask_edu.tracker import Tracker


def _iou(a, b):
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else np.logical_and(a, b).sum() / u


def _record_autocast(monkeypatch, model, names=("template", "track", "refine_at", "mask_at")):
    """Wrap the model's network entry points: record ``(name, autocast on, dtype)`` per call
    and the dtype of the returned tensor (or of ``score`` / ``zf``)."""
    calls = []
    for name in names:
        fn = getattr(model, name)

        def wrapped(*a, _fn=fn, _name=name, **k):
            out = _fn(*a, **k)
            t = out if isinstance(out, torch.Tensor) else getattr(out, "score", None)
            t = t if t is not None else out.zf
            calls.append((_name, torch.is_autocast_enabled("cpu"),
                          torch.get_autocast_dtype("cpu"), t.dtype))
            return out

        monkeypatch.setattr(model, name, wrapped)
    return calls


# -- validation ---------------------------------------------------------------------------------


def test_invalid_precision_raises(tmp_path):
    model = testing.tiny_model(seed=1)
    assert PRECISIONS == ("fp32", "bf16", "fp16")
    with pytest.raises(ValueError, match="'fp32', 'bf16', 'fp16'"):
        Tracker(model, precision="fp64")
    with pytest.raises(ValueError, match="precision must be one of"):
        Tracker(model, precision="bfloat16")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Tracker(model, precision="fp16")  # CPU
    with pytest.raises(ValueError, match="needs a CUDA device"):
        MultiTracker(model, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        MultiTracker(model, precision="half")
    # checked before the checkpoint is read: ValueError, not FileNotFoundError
    with pytest.raises(ValueError, match="precision must be one of"):
        Tracker.from_checkpoint(tmp_path / "absent.pth", precision="int8")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Tracker.from_pretrained("lite", weights=tmp_path / "absent.pth", precision="fp16")
    assert check_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="CPU or a CUDA"):
        check_precision("bf16", "meta")
    assert Tracker(model).precision == "fp32"


# -- where autocast is on ------------------------------------------------------------------------


@pytest.mark.parametrize("refine", [True, False])
def test_fp32_never_autocasts_and_bf16_autocasts_every_network_call(monkeypatch, refine):
    seq = make_synthetic_sequence(3, size=(120, 160))
    for precision in ("fp32", "bf16"):
        model = testing.tiny_model(seed=2)
        if not refine:  # masks from the mask head at the RoW (base-model path)
            model.refine = None
        calls = _record_autocast(monkeypatch, model)
        post = []
        real_choose, real_finish = step_mod.choose_row, step_mod.finish_step

        def spy_choose(score, delta, *a, _real=real_choose, _post=post, **k):
            _post.append((torch.is_autocast_enabled("cpu"), score.dtype, delta.dtype))
            return _real(score, delta, *a, **k)

        def spy_finish(choice, logits, *a, _real=real_finish, _post=post, **k):
            _post.append((torch.is_autocast_enabled("cpu"), logits.dtype, logits.dtype))
            return _real(choice, logits, *a, **k)

        # both halves of the post-processing, as the step calls them
        monkeypatch.setattr(step_mod, "choose_row", spy_choose)
        monkeypatch.setattr(step_mod, "finish_step", spy_finish)
        t = Tracker(model, precision=precision)
        results = list(t.track_sequence(seq.frames, seq.box))
        names = {c[0] for c in calls}
        assert names == {"template", "track", "refine_at" if refine else "mask_at"}
        if precision == "fp32":
            assert all(not on and dt == torch.float32 for _, on, _, dt in calls)
        else:
            assert all(on and ad == torch.bfloat16 for _, on, ad, _ in calls)
            assert any(dt == torch.bfloat16 for *_, dt in calls)  # really ran in bf16
        # post-processing: outside autocast, float32 network outputs
        assert len(post) == 2 * len(results)
        assert all(not on and s == d == torch.float32 for on, s, d in post)
        assert t.target.exemplar.zf.dtype == torch.float32
        for r in results:
            assert r.mask_prob.dtype == np.float32 and r.mask.dtype == bool
            assert np.isfinite(r.box).all()
        monkeypatch.undo()


def test_to_float32_converts_only_what_is_not_float32():
    from siammask_edu.models.siammask import Exemplar

    a, b = torch.ones(2), torch.ones(2, dtype=torch.bfloat16)
    assert to_float32(a) is a
    ex = to_float32(Exemplar(zf=b, kernels={"score": a, "box": b}, features=[b]))
    assert ex.zf.dtype == ex.kernels["box"].dtype == ex.features[0].dtype == torch.float32
    assert ex.kernels["score"] is a
    assert to_float32(None) is None and to_float32(torch.arange(3)).dtype == torch.int64


# -- bf16 against fp32 on a real sequence --------------------------------------------------------


def test_bf16_close_to_fp32_on_car_shadow(seeded_sharp):
    """Teacher-forced (both trackers start each frame from the fp32 state), frames 1-4 of
    car-shadow, the seeded *random* released sharp network.

    Measured (torch 2.13 CPU, AVX512-BF16): same RoW on every frame, |score diff| <= 0.031,
    mask IoU 0.979-0.985, |mask_prob diff| mean <= 0.0035 and max <= 0.042. The box is not
    compared in pixels here: on random weights the box head's deltas reach |4.7|, so bf16
    rounding of the 50-layer features (p3 relative error ~15%) moves the decoded centre by
    17-81 px. On a partly trained SiamMask-Lite (4 base epochs, not shipped), the same
    teacher-forced run gave centre within 0.15 px, size within 0.4 px and mask IoU >= 0.996
    (car-shadow and blackswan, 5 frames each); run freely, the two trajectories drift apart
    by 2-7 px over 5 frames through the state feedback.
    """
    from siammask_edu.paths import davis_sequence

    try:
        frames_dir, _ = davis_sequence("car-shadow")
    except FileNotFoundError as exc:
        skip_missing_data(f"DAVIS data not available: {exc}")
    frames = [cv2.imread(str(p)) for p in sorted(frames_dir.glob("*.jpg"))[:5]]
    box = (313.0, 88.0, 342.0, 194.0)
    ref = Tracker(seeded_sharp, "davis", color_order="bgr")
    low = Tracker(seeded_sharp, "davis", color_order="bgr", precision="bf16")
    ref.init(frames[0], box)
    low.init(frames[0], box)
    for f in frames[1:]:
        low.set_target(ref.center, ref.size)
        a, b = ref.track(f), low.track(f)
        assert a.row_col == b.row_col
        assert abs(a.score - b.score) < 0.06
        assert _iou(a.mask, b.mask) > 0.95
        both = (a.mask_prob >= 0) & (b.mask_prob >= 0)  # inside both pasted windows
        d = np.abs(a.mask_prob - b.mask_prob)[both]
        assert d.mean() < 0.01 and d.max() < 0.1


# -- MultiTracker -------------------------------------------------------------------------------


def test_multitracker_passes_precision_on(monkeypatch):
    seq = make_synthetic_sequence(3, size=(120, 160))
    x, y, w, h = seq.box
    boxes = [seq.box, (x + 6, y + 4, w * 0.8, h * 0.9)]
    model = testing.tiny_model(seed=3)
    calls = _record_autocast(monkeypatch, model)
    mt = MultiTracker(model, precision="bf16", max_batch=None)
    mt.init(seq.frames[0], boxes)
    assert mt.precision == "bf16" and all(t.precision == "bf16" for t in mt.trackers)
    res = [mt.track(f) for f in seq.frames[1:]]
    batched = [c for c in calls if c[0] == "track"]
    assert batched and all(on and ad == torch.bfloat16 for _, on, ad, _ in calls)
    assert all(r.mask_prob.dtype == np.float32 for rs in res for r in rs)
    # the same targets tracked one by one in bf16 pick the same RoWs
    singles = [Tracker(model, precision="bf16") for _ in boxes]
    for t, b in zip(singles, boxes):
        t.init(seq.frames[0], b)
    for f, rs in zip(seq.frames[1:], res):
        for t, r in zip(singles, rs):
            assert t.track(f).row_col == r.row_col


# -- command line -------------------------------------------------------------------------------


class _FakeTracker:
    instances: ClassVar[list] = []

    def __init__(self, checkpoint, config, device, precision="fp32", box_strategy=None):
        from siammask_edu.config import tracker_config

        self.precision, self.config = precision, tracker_config(config)
        _FakeTracker.instances.append(self)

    def init(self, frame, box):
        self.hw, self.box = frame.shape[:2], tuple(box)

    def track(self, frame):
        from types import SimpleNamespace

        x, y, w, h = self.box
        poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
        return SimpleNamespace(mask=np.zeros(self.hw, bool), polygon=poly, box=self.box,
                               score=0.5, mask_prob=None, polygon_source="box", row_col=(0, 0),
                               lost=False, kept_previous=False)


def test_cli_track_precision(tmp_path, monkeypatch, capsys):
    _FakeTracker.instances = []
    monkeypatch.setattr(cli, "_make_tracker", _FakeTracker)
    src = data.save_synthetic_sequence(tmp_path / "seq", n_frames=3, size=(60, 80)) / "frames"
    ck = tmp_path / "m.pth"
    ck.write_bytes(b"x")
    base = ["track", str(src), "--box", "20,20,24,14", "--checkpoint", str(ck), "--quiet",
            "--no-video"]
    assert cli.main([*base, "--out", str(tmp_path / "a"), "--precision", "bf16"]) == 0
    assert _FakeTracker.instances[-1].precision == "bf16"
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["precision"] == "bf16"
    assert cli.main([*base, "--out", str(tmp_path / "b")]) == 0
    assert _FakeTracker.instances[-1].precision == "fp32"
    capsys.readouterr()
    assert cli.main([*base, "--out", str(tmp_path / "c"), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a CUDA device" in err[0]
    assert cli.main([*base, "--out", str(tmp_path / "d"), "--precision", "fp8"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_benchmark_and_bench_parse_precision():
    p = cli.build_parser()
    for name in ("davis", "vot"):
        assert p.parse_args(["benchmark", name, "--out", "o"]).precision == "fp32"
        assert p.parse_args(["benchmark", name, "--out", "o", "--precision", "bf16"]
                            ).precision == "bf16"
    assert p.parse_args(["bench"]).precision == ["fp32"]
    assert p.parse_args(["bench", "--precision", "fp32", "bf16"]).precision == ["fp32", "bf16"]


def test_bench_cli_rejects_fp16_on_cpu_before_any_worker(monkeypatch):
    monkeypatch.setattr(bench, "run_isolated", lambda spec: pytest.fail("worker started"))
    with pytest.raises(ValueError, match="needs a CUDA device"):
        bench.main(["--presets", "lite", "--threads", "1", "--precision", "fp32", "fp16"])


def test_bench_rows_carry_precision(monkeypatch):
    seq = make_synthetic_sequence(4, size=(120, 160))
    monkeypatch.setattr(bench, "load_frames", lambda n=40, sequence=None: [
        np.ascontiguousarray(f[:, :, ::-1]) for f in seq.frames[:n]])
    monkeypatch.setattr(bench, "load_model", lambda p, c=None: (testing.tiny_model(), "tiny"))
    monkeypatch.setattr(bench, "INIT_BOX", tuple(float(v) for v in seq.box))
    rows = [bench.run_single("sharp", 1, "fast", n_frames=4, warmup=1, precision=p)
            for p in ("fp32", "bf16")]
    rows.append(bench.run_multi("sharp", 1, 2, n_frames=3, warmup=1, precision="bf16"))
    assert [r["precision"] for r in rows] == ["fp32", "bf16", "bf16"]
    table = bench.format_table(rows).splitlines()
    assert "| precision |" in table[0] and "| fast | fp32 |" in table[2]
    assert "| fast | bf16 |" in table[3] and "| 2 | bf16 |" in table[-1]
    with pytest.raises(ValueError, match="needs a CUDA device"):
        bench.run_single("sharp", 1, "fast", n_frames=3, precision="fp16")
    # the timed step is Tracker.track's work: same result as an untimed bf16 tracker
    from siammask_edu.timing import Stopwatch

    timed = Tracker(testing.tiny_model(), precision="bf16")
    plain = Tracker(testing.tiny_model(), precision="bf16")
    for t in (timed, plain):
        t.init(seq.frames[0], seq.box)
    bgr = np.ascontiguousarray(seq.frames[1][:, :, ::-1])
    a = bench.timed_track(timed, bgr, Stopwatch("cpu"))
    b = plain.track(seq.frames[1])
    assert a.row_col == b.row_col and a.box == b.box and np.array_equal(a.mask, b.mask)


def test_load_tracker_passes_precision(tmp_path):
    from siammask_edu import save_checkpoint
    from siammask_edu.cli_eval import load_tracker

    ck = save_checkpoint(testing.tiny_model(seed=4), tmp_path / "tiny.pth")
    t, info = load_tracker(str(ck), "davis", "cpu", "bf16")
    assert t.precision == "bf16" and info["sha256_of"] == "file"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        load_tracker(str(ck), "davis", "cpu", "fp16")
