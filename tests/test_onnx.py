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


# -- issue 13 item 7: the three graphs of a folder must come from one export ----------------


def _mixed(tmp_path, src_dir, donor_dir, graph="exemplar"):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(src_dir, mixed)
    shutil.copy(donor_dir / f"{graph}.onnx", mixed / f"{graph}.onnx")
    return mixed


def test_every_graph_carries_the_export_id(tiny_export):
    import json

    import onnx

    _, d, paths = tiny_export
    meta = json.loads((d / "meta.json").read_text())
    assert len(meta["export_id"]) == 32 and meta["model_config"]["name"] == "tiny"
    for g, p in paths.items():
        props = {e.key: e.value for e in onnx.load(str(p)).metadata_props}
        assert props["siammask_edu.export_id"] == meta["export_id"]
        assert props["siammask_edu.graph"] == g


def test_graphs_of_another_architecture_are_refused_at_load(tiny_export, tmp_path):
    """Before: loaded together, then the first track() failed with a raw
    '[ONNXRuntimeError] ... Got: 32 Expected: 16'."""
    model, d, _ = tiny_export
    narrow = build_model(ModelConfig.tiny().replace(feature_channels=16, hidden_channels=16))
    other = tmp_path / "other"
    export_onnx(narrow, other)
    mixed = _mixed(tmp_path, d, other, "exemplar")
    with pytest.raises(ValueError, match=r"do not belong together.*exemplar\.onnx.*another "
                                         r"export.*export_onnx") as err:
        OnnxModel(mixed, model.config)
    assert "ONNXRuntimeError" not in str(err.value)


def test_graphs_of_another_export_of_the_same_architecture_are_refused(tiny_export, tmp_path):
    """Same shapes, other weights: onnxruntime would run them and track nonsense."""
    model, d, _ = tiny_export
    other = tmp_path / "other"
    export_onnx(testing.tiny_model(seed=7), other)
    mixed = _mixed(tmp_path, d, other, "search")
    with pytest.raises(ValueError, match=r"search\.onnx.*another export"):
        OnnxModel(mixed, model.config)
    # a graph saved under another graph's name is named too
    import shutil

    renamed = tmp_path / "renamed"
    shutil.copytree(d, renamed)
    shutil.copy(d / "mask.onnx", renamed / "exemplar.onnx")
    with pytest.raises(ValueError, match=r"exemplar\.onnx holds the 'mask' graph"):
        OnnxModel(renamed, model.config)


def test_a_config_that_does_not_fit_the_export_is_refused(tiny_export):
    model, d, _ = tiny_export
    with pytest.raises(ValueError, match="refine"):
        OnnxModel(d, model.config.replace(refine=False))


def test_an_export_without_ids_still_loads_with_a_warning(tiny_export, tmp_path):
    """Folders exported before the ids existed: loaded, shapes checked, and a warning."""
    import json
    import shutil

    import onnx

    model, d, _ = tiny_export
    old = tmp_path / "old"
    shutil.copytree(d, old)
    for g in ("exemplar", "search", "mask"):
        m = onnx.load(str(old / f"{g}.onnx"))
        del m.metadata_props[:]
        onnx.save(m, str(old / f"{g}.onnx"))
    meta = json.loads((old / "meta.json").read_text())
    (old / "meta.json").write_text(json.dumps({k: meta[k] for k in ("opset", "folded",
                                                                     "refine", "refine_windows")}))
    with pytest.warns(UserWarning, match="no export id"):
        OnnxModel(old, model.config)


def test_an_export_without_ids_of_another_architecture_is_refused_on_shapes(tmp_path):
    import onnx

    from siammask_edu.export.onnx import GRAPHS

    a, b = tmp_path / "a", tmp_path / "b"
    export_onnx(testing.tiny_model(seed=1), a)
    export_onnx(build_model(ModelConfig.tiny().replace(feature_channels=16,
                                                       hidden_channels=16)), b)
    for d in (a, b):
        (d / "meta.json").unlink()
        for g in GRAPHS:
            m = onnx.load(str(d / f"{g}.onnx"))
            del m.metadata_props[:]
            onnx.save(m, str(d / f"{g}.onnx"))
    mixed = _mixed(tmp_path, a, b, "exemplar")
    with pytest.warns(UserWarning, match="no export id"), \
            pytest.raises(ValueError, match=r"exemplar\.onnx gives k_score of shape .* but "
                                            r"search\.onnx expects k_score .*architecture"):
        OnnxModel(mixed, ModelConfig.tiny())
