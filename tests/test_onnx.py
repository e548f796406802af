"""ONNX export of the three graphs, checked with onnxruntime; the onnxruntime tracker."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="ONNX tests need the [export] extra (onnx, onnxruntime)")
pytest.importorskip("onnxruntime", reason="ONNX tests need the [export] extra (onnxruntime)")

from siammask_edu import testing
from siammask_edu.config import ModelConfig
from siammask_edu.data import make_synthetic_sequence
from siammask_edu.export.onnx import OnnxModel, check_onnx, export_onnx
from siammask_edu.models import build_model
from siammask_edu.tracker import Tracker


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    model = testing.tiny_model(seed=1)
    d = tmp_path_factory.mktemp("onnx_tiny")
    paths = export_onnx(model, d)
    return model, d, paths


def test_three_graphs_opset_and_agreement(tiny_export):
    import onnx

    model, d, paths = tiny_export
    assert set(paths) == {"exemplar", "search", "mask"}
    for p in paths.values():
        m = onnx.load(str(p))
        assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
    res = check_onnx(model, d)
    assert res["rel"]["max"] <= 1e-4, res


def test_onnx_tracker_follows_the_torch_tracker(tiny_export):
    model, d, _ = tiny_export
    seq = make_synthetic_sequence(4, size=(120, 160))
    a = Tracker(model)
    b = Tracker(OnnxModel(d, model.config, threads=1))
    ra = list(a.track_sequence(seq.frames, seq.box))
    rb = list(b.track_sequence(seq.frames, seq.box))
    for x, y in zip(ra, rb):
        assert x.row_col == y.row_col
        np.testing.assert_allclose(x.center, y.center, atol=1e-2)
        inter = np.logical_and(x.mask, y.mask).sum()
        union = np.logical_or(x.mask, y.mask).sum()
        assert union == 0 or inter / union >= 0.99


def test_base_model_mask_graph(tmp_path):
    model = build_model(ModelConfig.tiny().replace(refine=False))
    export_onnx(model, tmp_path)
    res = check_onnx(model, tmp_path)
    assert res["rel"]["max"] <= 1e-4, res


def test_lite_model_refinement_windows_travel_with_the_export(tmp_path):
    """Lite refines on 64/32/16 windows (released: 61/31/15); export_onnx records them in
    meta.json and OnnxModel reads them back (a wrong window is an onnxruntime shape error)."""
    import json

    model = build_model("lite").eval()
    model.backbone.bf16_inference = False  # compare fp32 with fp32
    export_onnx(model, tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["refine_windows"] == [[64, 32, 16], list(model.refine.steps),
                                      list(model.refine.pads)]
    assert OnnxModel(tmp_path, model.config).windows == (64, 32, 16)
    res = check_onnx(model, tmp_path)
    assert res["rel"]["max"] <= 1e-4, res


def test_export_errors(tmp_path):
    with pytest.raises(ValueError):
        export_onnx(testing.tiny_model(), tmp_path, opset=13)
    with pytest.raises(ValueError):
        export_onnx(build_model(ModelConfig.tiny().replace(branches="two")), tmp_path)
    with pytest.raises(FileNotFoundError):
        OnnxModel(tmp_path / "missing", ModelConfig.tiny())
