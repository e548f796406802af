"""VOT region.c overlap, accuracy/robustness/EAO and the reset protocol against the official
toolkit numbers (fixtures/vot_metrics), plus the error and edge cases."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from siammask_edu.metrics import vot as V
from siammask_edu.testing import skip_missing_data

SEQS = ("bag", "book")
INTERVALS = {
    "VOT2018_interval_100_356": "VOT2018",
    "VOT2016_foolwood_interval_100_356": "VOT2016",
    "VOT2016_stvir_interval_108_371": "VOT2016-stvir",
}


@pytest.fixture(scope="module")
def vot_fx(fixtures_dir):
    d = fixtures_dir / "vot_metrics"
    if not (d / "reference.json").is_file():
        skip_missing_data(f"VOT metric fixtures not available at {d}")
    return d


@pytest.fixture(scope="module")
def ref(vot_fx):
    return json.loads((vot_fx / "reference.json").read_text())


@pytest.fixture(scope="module")
def gt(vot_fx):
    return {s: V.read_trajectory(vot_fx / "groundtruth" / s / "groundtruth.txt") for s in SEQS}


@pytest.fixture(scope="module")
def trajs(vot_fx, ref):
    return {
        (t, s): V.read_trajectory(vot_fx / r["result_file"])
        for t, seqs in ref["results"].items()
        for s, r in seqs.items()
    }


def _variants(W, H):
    return {
        "accuracy_burnin10_bounds_W_H": ((W, H), 10),
        "eao_burnin0_bounds_Wm1_Hm1": ((W - 1, H - 1), 0),
        "burnin0_bounds_W_H": ((W, H), 0),
        "burnin0_unbounded": (None, 0),
    }


@pytest.fixture(scope="module")
def overlaps(ref, gt, trajs):
    out = {}
    for (t, s), traj in trajs.items():
        W, H = ref["results"][t][s]["image_size_WH"]
        for key, (bounds, burnin) in _variants(W, H).items():
            out[(t, s, key)] = V.trajectory_overlaps(traj, gt[s], bounds, burnin)
    return out


def _ref_array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def test_overlap_unit_cases_exact(ref):
    cases = ref["overlap_unit_cases"]
    assert len(cases) == 16
    for c in cases:
        got = V.region_overlap(c["region1"], c["region2"], c["bounds_W_H"])
        assert got == c["overlap"], (c["name"], got, c["overlap"])
        assert V.region_overlap(c["region2"], c["region1"], c["bounds_W_H"]) == c["overlap"]


def test_per_frame_overlaps_exact(overlaps, ref):
    assert len(overlaps) == 3 * 2 * 4
    for (t, s, key), ov in overlaps.items():
        want = _ref_array(ref["results"][t][s]["per_frame_overlaps"][key])
        assert ov.shape == want.shape and np.array_equal(ov, want, equal_nan=True), (t, s, key)
        assert np.array_equal(ov.astype(np.float32).astype(np.float64), ov, equal_nan=True)


def test_accuracy_failures_robustness_per_sequence(overlaps, ref, trajs, gt):
    for (t, s), traj in trajs.items():
        r = ref["results"][t][s]
        ov = overlaps[(t, s, "accuracy_burnin10_bounds_W_H")]
        acc = float(np.nanmean(ov))
        assert (
            acc == r["accuracy"]
            and np.count_nonzero(~np.isnan(ov)) == r["n_frames_used_in_accuracy"]
        )
        n, frames = V.failures(traj)
        assert n == r["failures"] == r["num_failures"] and frames == r["failure_frames_0based"]
        assert [i for i, x in enumerate(traj) if x.size == 1 and x[0] == 1] == r[
            "init_frames_0based"
        ]
        assert V.robustness(n, len(traj)) == r["robustness_per100frames"]
    acc, ov = V.accuracy(trajs[("drift", "bag")], gt["bag"], (480, 360))
    assert acc == ref["results"]["drift"]["bag"]["accuracy"]
    assert np.array_equal(
        ov, overlaps[("drift", "bag", "accuracy_burnin10_bounds_W_H")], equal_nan=True
    )


def test_eao_and_curves_per_sequence(overlaps, ref, trajs, gt):
    for (t, s), traj in trajs.items():
        o = overlaps[(t, s, "eao_burnin0_bounds_Wm1_Hm1")]
        curve = V.expected_overlap_curve(
            *V.eao_fragments([o], [V.failures(traj)[1]], [len(gt[s])])
        )
        want = np.array(ref["expected_overlap_curves"][s][t], dtype=np.float32)
        assert curve.dtype == np.float32 and np.array_equal(curve, want), (t, s)
        for key, name in INTERVALS.items():
            assert V.eao(curve, name) == ref["results"][t][s]["eao_single_sequence_dataset"][key]


def test_dataset_level(ref, trajs, gt):
    sizes = {s: tuple(ref["results"]["drift"][s]["image_size_WH"]) for s in SEQS}
    for t in ref["dataset_level"]:
        out = V.evaluate_vot({s: trajs[(t, s)] for s in SEQS}, gt, sizes, list(INTERVALS.values()))
        d = ref["dataset_level"][t]
        assert out["accuracy"] == d["accuracy_pooled_over_frames"]
        assert out["lost_number"] == d["lost_number"] and out["n_frames"] == d["n_frames_total"]
        assert out["robustness"] == d["robustness_per100frames"]
        want = np.array(ref["expected_overlap_curves"]["bag+book"][t], dtype=np.float32)
        assert np.array_equal(out["curve"], want)
        for key, name in INTERVALS.items():
            assert out["eao"][name] == d["eao"][key], (t, key)
        for row in out["per_sequence"]:
            assert row["accuracy"] == ref["results"][t][row["sequence"]]["accuracy"]
        # the toolkits' own printed tables, row by row
        for table, name in (
            ("foolwood_VOT2018_bag+book", "VOT2018"),
            ("stvir_VOT2016_bag+book", "VOT2016-stvir"),
        ):
            row = "|{:^14}|{:^10.3f}|{:^12.3f}|{:^13.1f}|{:^7.3f}|".format(
                t, out["accuracy"], out["robustness"], out["lost_number"], out["eao"][name]
            )
            assert row in ref["toolkit_printed_tables"][table], row


# ---------------------------------------------------------------- the reset protocol


class _Drift:
    """The fixture's ``drift`` tracker: the init box moving right by 2 px a frame."""

    def init(self, frame, box):
        x, y, w, h = box
        self.c, self.wh, self.k = (x + w / 2, y + h / 2), (w, h), 0

    def track(self, frame):
        self.k += 1
        (cx, cy), (w, h) = self.c, self.wh
        box = np.array([cx + 2 * self.k - w / 2, cy - h / 2, w, h])
        return SimpleNamespace(box=box, polygon=V.region_to_polygon(box))


class _Replay:
    """Replays per-frame outputs (needs no failure), counting frames since init."""

    def __init__(self, outputs):
        self.outputs, self.f = outputs, 0

    def init(self, frame, box):
        pass

    def track(self, frame):
        self.f += 1
        out = self.outputs[self.f]
        return SimpleNamespace(polygon=out.reshape(-1, 2), box=out)


def _frames(s, n):
    W, H = {"bag": (480, 360), "book": (640, 480)}[s]
    return [np.broadcast_to(np.zeros((), np.uint8), (H, W, 3))] * n


@pytest.mark.parametrize("seq", SEQS)
def test_run_supervised_reproduces_result_files(vot_fx, gt, seq):
    g = gt[seq]
    files = {
        t: (vot_fx / t / seq / f"{seq}_001.txt").read_text().splitlines()
        for t in ("drift", "gt_jitter", "axis_aligned")
    }
    out = V.run_supervised(_Drift, _frames(seq, len(g)), g, region="box")  # a factory
    assert [V.format_region(r) for r in out] == files["drift"]
    noise = np.random.default_rng({"bag": 1001, "book": 1002}[seq]).uniform(-3, 3, (len(g), 8))
    jit = _Replay([x + e for x, e in zip(g, noise)])
    out = V.run_supervised(jit, _frames(seq, len(g)), g)  # a tracker instance
    assert [V.format_region(r) for r in out] == files["gt_jitter"]
    boxes = [np.array([x[0::2].min(), x[1::2].min(), np.ptp(x[0::2]), np.ptp(x[1::2])]) for x in g]
    out = V.run_supervised(_Replay(boxes), _frames(seq, len(g)), g, region="box")
    assert [V.format_region(r) for r in out] == files["axis_aligned"]


def test_run_supervised_skips_and_reinits():
    gt = [np.array([10.0, 10, 30, 10, 30, 30, 10, 30])] * 12
    calls = []

    class Lost:
        def init(self, frame, region):
            calls.append(np.asarray(region).shape)

        def track(self, frame):
            return SimpleNamespace(polygon=np.array([[60.0, 60], [70, 60], [70, 70], [60, 70]]))

    out = V.run_supervised(Lost(), _frames("bag", 12), gt, init_with="polygon")
    assert [V.format_region(r) for r in out] == [
        "1",
        "2",
        "0",
        "0",
        "0",
        "0",
        "1",
        "2",
        "0",
        "0",
        "0",
        "0",
    ]
    assert calls == [(4, 2), (4, 2)]
    with pytest.raises(ValueError):
        V.run_supervised(Lost(), [], [], region="mask")

    class WithPolygonInit(Lost):
        def init_polygon(self, frame, polygon8):
            calls.append(("init_polygon", tuple(polygon8)))

    calls.clear()
    out = V.run_supervised(WithPolygonInit(), _frames("bag", 3), gt[:3])  # "auto"
    assert calls == [("init_polygon", tuple(gt[0]))]
    calls.clear()
    V.run_supervised(WithPolygonInit(), _frames("bag", 3), gt[:3], init_with="box")
    assert calls == [(4,)]


def test_run_supervised_nonfinite_output_is_a_failure():
    gt = [np.array([10.0, 10, 20, 20])] * 3

    class Nan:
        def init(self, frame, box):
            assert np.allclose(box, [10, 10, 20, 20])

        def track(self, frame):
            return SimpleNamespace(polygon=np.full((4, 2), np.nan))

    out = V.run_supervised(Nan(), _frames("bag", 3), gt, image_size=(100, 100))
    assert [V.format_region(r) for r in out] == ["1", "2", "0"]


# ---------------------------------------------------------------- building blocks


def test_parse_format_and_round_trip(tmp_path):
    assert V.parse_region("2").tolist() == [2.0]
    assert V.parse_region(" 1.5,2,3,4\n").tolist() == [1.5, 2, 3, 4]
    assert V.parse_region("1,2,3,4,5,6,7,8").shape == (8,)
    for bad in ("", "1,2", "1,2,3", "1,2,3,4,5", "1,2,3,4,5,6,7"):
        with pytest.raises(ValueError):
            V.parse_region(bad)
    regions = [
        np.array([1.0]),
        np.array([314.14213562, 146.38, 106.13, 96.41]),
        np.array([2.0]),
        np.array([0.0]),
    ]
    V.write_trajectory(tmp_path / "r.txt", regions)
    assert (tmp_path / "r.txt").read_text() == "1\n314.1421,146.3800,106.1300,96.4100\n2\n0\n"
    back = V.read_trajectory(tmp_path / "r.txt")
    assert [b.size for b in back] == [1, 4, 1, 1]
    # numbers go through float32 as in vot_float2str: 0.00005 sits on a float32 rounding edge
    assert V.format_region(np.array([1.00005, 0.0, 1, 1])).startswith("1.0000,")


def test_rasterisation_rules():
    m = V.rasterize_polygon(V.region_to_polygon([2, 1, 4, 3]), 10, 8)
    assert m.sum() == 5 * 4 and m[1:5, 2:7].all()  # w x h rect covers (w+1)(h+1) pixels
    tri = V.rasterize_polygon(np.array([[0, 0], [6, 0], [0, 6]], np.float32), 8, 8)
    assert tri[0, :7].all() and tri[0].sum() == 7 and tri[5, :2].all() and tri[5].sum() == 2
    assert not tri[6].any()  # the apex row gives two equal nodes: the first is skipped
    half = V.rasterize_polygon(
        np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]], np.float32), 5, 5
    )
    assert half[1:4, 1:4].all() and half.sum() == 9  # 0.5 -> 1, 2.5 -> 3 (half away from 0)
    clipped = V.rasterize_polygon(np.array([[-5, 0], [20, 0], [20, 2], [-5, 2]], np.float32), 6, 4)
    assert clipped[:3].all() and not clipped[3].any()


def test_region_overlap_edge_cases():
    assert np.isnan(V.region_overlap([1.0], [0, 0, 5, 5]))
    assert V.region_overlap([0, 0, 10, 10], [0, 0, 10, 10], (5, 5)) == 1.0
    assert V.region_overlap([0, 0, 10, 10], [50, 50, 10, 10], (40, 40)) == 0.0  # outside
    assert V.region_overlap([0, 0, 0, 10], [0, 0, 10, 10]) == 0.0  # zero-area box
    a, b = [3.2, 4.1, 20.5, 11.0], [5.0, 2.0, 18.0, 15.5]
    assert abs(V.region_overlap(a, b) - V.polygon_iou(a, b)) < 0.1


def test_polygon_iou_analytic():
    assert V.polygon_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(1 / 3)
    diamond = [5, 0, 10, 5, 5, 10, 0, 5]
    assert V.polygon_iou(diamond, [0, 0, 10, 10]) == pytest.approx(0.5)
    assert np.isnan(V.polygon_iou([2.0], diamond))
    assert V.polygon_iou([0, 0, 1, 1], [5, 5, 1, 1]) == 0.0


def test_eao_fragments_rules():
    o = [
        np.array([np.nan, 0.5, 0.6, 0.0, np.nan, np.nan, np.nan, np.nan, np.nan, 0.8]),
        np.array([np.nan, 0.9, 0.7, np.nan]),
    ]
    frag, w = V.eao_fragments(o, [[3, 6], []])
    # seq 1: points [0, 8]; 6 + 5 = 11 > 10 is dropped -> one unused NaN row
    assert frag.shape == (4, 10)
    assert np.array_equal(frag[0], [0, 0.5, 0.6, 0, 0, 0, 0, 0, 0, 0])  # 0-padded, NaN -> 0
    assert np.array_equal(frag[1, :2], [0, 0.8]) and np.isnan(frag[1, 2:]).all()
    assert np.array_equal(frag[2, :4], o[1], equal_nan=True) and np.isnan(frag[2, 4:]).all()
    assert np.isnan(frag[3]).all() and np.isnan(w[3])  # rows are filled in order
    assert w[0] == 1 and w[1] == pytest.approx(1) and w[2] == 1
    c = V.expected_overlap_curve(frag, w)
    assert c[0] == 1 and c[1] == np.float32((0.5 + 0.8 + 0.9) / 3)
    assert c[2] == np.float32(((0.5 + 0.6) / 2 + (0.9 + 0.7) / 2) / 2)  # row 1 ended
    assert c[3] == np.float32((0.5 + 0.6 + 0.0) / 3)  # row 3 is NaN at frame 3
    assert c[5] == np.float32((0.5 + 0.6) / 5)  # only the closed fragment reaches frame 5


def test_eao_interval_truncation():
    c = np.linspace(1, 0, 150).astype(np.float32)
    assert V.eao(c, "VOT2018") == np.mean(c[99:150].astype(np.float64))
    assert V.eao(c, (46, 291)) == pytest.approx(np.mean(c[45:150]))
    assert np.isnan(V.eao(c[:50], "VOT2018"))
    assert V.EAO_INTERVALS["VOT2016-stvir"] == (108, 371)


def test_error_cases():
    with pytest.raises(ValueError, match="empty dataset"):
        V.evaluate_vot({}, {}, {})
    with pytest.raises(ValueError, match="bag"):
        V.evaluate_vot({"bag": [np.array([1.0])]}, {}, {})
    with pytest.raises(ValueError):
        V.robustness(1, 0)


def test_evaluate_vot_refuses_results_of_another_length():
    """Issue 13: a result file is paired line by line with the ground truth; one of another
    length (a frame lost or added) was scored on the common prefix. Now every such
    sequence is named."""
    g = [np.array([10.0, 10, 30, 10, 30, 30, 10, 30])] * 12
    sizes = {s: (64, 48) for s in "abc"}
    with pytest.raises(ValueError, match=r"a: 10 result lines for 12 ground-truth frames; "
                                         r"b: 13 result lines for 12"):
        V.evaluate_vot({"a": g[:10], "b": g + g[:1], "c": g}, {s: g for s in "abc"}, sizes)


def test_run_supervised_refuses_frames_and_groundtruth_of_different_lengths():
    """zip() silently dropped the frames (or ground truth) beyond the shorter of the two."""
    g = [np.array([10.0, 10, 30, 10, 30, 30, 10, 30])] * 12

    class Still:
        def init(self, frame, region):
            pass

        def track(self, frame):
            return SimpleNamespace(polygon=np.array([[10.0, 10], [30, 10], [30, 30], [10, 30]]))

    with pytest.raises(ValueError, match="13 frames for 12 ground-truth regions"):
        V.run_supervised(Still(), _frames("bag", 13), g, init_with="polygon")
    with pytest.raises(ValueError, match="11 frames for 12 ground-truth regions"):
        V.run_supervised(Still(), _frames("bag", 11), g, init_with="polygon")
    assert len(V.run_supervised(Still(), _frames("bag", 12), g, init_with="polygon")) == 12
