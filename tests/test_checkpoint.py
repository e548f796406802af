import collections
import warnings

import pytest
import torch

from siammask_edu import build_model, load_checkpoint, load_released_checkpoint, save_checkpoint
from siammask_edu.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    convert_checkpoint,
    detect_layout,
    map_released_keys,
)

PYSOT = [("features.features.", "backbone."), ("features.downsample.", "neck.downsample."),
         ("rpn_model.", "rpn_head."), ("mask_model.mask.", "mask_head."),
         ("refine_model.", "refine_head.")]


@pytest.fixture(scope="module")
def official_state(seeded_checkpoint):
    return torch.load(seeded_checkpoint, weights_only=True)["state_dict"]


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_official_file_loads_as_sharp(seeded_sharp, official_state):
    assert seeded_sharp.config.name == "sharp"
    assert not seeded_sharp.training
    # fp16 file, fp32 model, values cast exactly
    w = official_state["rpn_model.cls.head.3.weight"].float()
    assert seeded_sharp.score_head.head[3].weight.dtype == torch.float32
    assert torch.equal(seeded_sharp.score_head.head[3].weight, w)
    assert torch.equal(seeded_sharp.neck.bn.running_var,
                       official_state["features.downsample.downsample.1.running_var"].float())


def test_pysot_layout_and_wrappers(tmp_path, seeded_sharp, official_state):
    pysot = collections.OrderedDict()
    for k, v in official_state.items():
        for src, dst in PYSOT:
            if k.startswith(src):
                k = dst + k[len(src):]
                break
        pysot["module." + k] = v
    assert detect_layout([k.removeprefix("module.") for k in pysot]) == "pysot"
    p = tmp_path / "pysot.pth"
    torch.save({"epoch": 3, "state_dict": pysot}, p)
    _same_weights(load_released_checkpoint(p), seeded_sharp)
    plain = tmp_path / "plain.pth"
    torch.save(dict(official_state), plain)  # no wrapper at all (like SiamMask_VOT_LD.pth)
    _same_weights(load_released_checkpoint(plain), seeded_sharp)


def test_base_checkpoint(tmp_path, official_state):
    base_state = {k: v for k, v in official_state.items() if not k.startswith("refine_model.")}
    assert len(base_state) == 324
    p = tmp_path / "base.pth"
    torch.save({"state_dict": base_state}, p)
    model = load_released_checkpoint(p)  # inferred: no refine keys -> base
    assert model.config.name == "base" and model.refine is None
    with pytest.raises(CheckpointError,
                       match=r"refine_model\.\* is missing \(32 of 32 keys\).*'base'"):
        load_released_checkpoint(p, preset="sharp")


def test_sharp_file_as_base_drops_refine_with_warning(seeded_checkpoint):
    with pytest.warns(UserWarning, match="ignoring 32 refine_model"):
        m = load_released_checkpoint(seeded_checkpoint, preset="base")
    assert m.refine is None


def test_strict_errors_name_keys_and_shapes(tmp_path, official_state):
    st = dict(official_state)
    del st["rpn_model.loc.head.3.bias"]
    st["rpn_model.extra.weight"] = torch.zeros(3)
    st["mask_model.mask.head.3.weight"] = torch.zeros(100, 256, 1, 1)
    p = tmp_path / "bad.pth"
    torch.save({"state_dict": st}, p)
    with pytest.raises(CheckpointError) as err:
        load_released_checkpoint(p)
    msg = str(err.value)
    assert "box_head.head.3.bias" in msg  # missing, in our names
    assert "rpn_model.extra.weight" in msg  # unexpected, as in the file
    assert "mask_head.head.3.weight: checkpoint (100, 256, 1, 1) vs model (3969, 256, 1, 1)" in msg


def test_missing_num_batches_tracked_is_tolerated(tmp_path, official_state, seeded_sharp):
    st = {k: v for k, v in official_state.items() if not k.endswith("num_batches_tracked")}
    p = tmp_path / "old.pth"
    torch.save(st, p)
    _same_weights(load_released_checkpoint(p), seeded_sharp)


def test_not_a_checkpoint(tmp_path, seeded_checkpoint):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_released_checkpoint(tmp_path / "nope.pth")
    html = tmp_path / "SiamMask_DAVIS.pth"
    html.write_text("<!DOCTYPE html><html><head><title>Sign in</title></head></html>")
    with pytest.raises(CheckpointError, match="HTML"):
        load_released_checkpoint(html)
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(seeded_checkpoint.read_bytes()[:1_000_000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_released_checkpoint(trunc)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_released_checkpoint(empty)
    other = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="unrecognised key layout"):
        load_released_checkpoint(other)


class _Payload:  # a pickled object: must never be unpickled
    pass


def test_pickled_objects_are_refused(tmp_path, official_state):
    p = tmp_path / "pickled.pth"
    torch.save({"state_dict": dict(official_state), "obj": _Payload()}, p)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_released_checkpoint(p)


def test_always_weights_only(monkeypatch, seeded_checkpoint):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_released_checkpoint(seeded_checkpoint)
    assert seen == [True]


def test_own_checkpoint_roundtrip_carries_preset(tmp_path):
    m = build_model("tiny")
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p))
    path = save_checkpoint(m, tmp_path / "sub" / "tiny.pth", extra={"epoch": 2})
    assert not list(tmp_path.glob("sub/*.tmp"))
    loaded = load_checkpoint(path)  # no preset given: read from the file
    assert loaded.config == m.config
    _same_weights(loaded, m)
    half = load_checkpoint(save_checkpoint(m, tmp_path / "h.pth", half=True))
    assert half.config.name == "tiny"
    torch.testing.assert_close(half.score_head.head[3].weight, m.score_head.head[3].weight,
                               atol=1e-2, rtol=1e-3)


def test_key_map_official_names():
    ours = build_model("sharp").state_dict().keys()
    official = map_released_keys({k: None for k in ours}, "ours")
    assert set(official) == set(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert detect_layout(["features.features.conv1.weight"]) == "official"


@pytest.mark.parametrize("table, preset, layout", [
    ("keys_siammask_sharp.txt", "sharp", "official"),
    ("keys_siammask_base.txt", "base", "official"),
    ("keys_pysot_siammask_r50_l3.txt", "sharp", "pysot"),
])
def test_released_key_tables_map_onto_our_model(fixtures_dir, table, preset, layout):
    """Every key and shape of the measured released key tables maps onto our modules."""
    rows = {}
    for line in (fixtures_dir.parent / table).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, shape = line.split(" ", 1)
        rows[name] = tuple(int(v) for v in shape.strip().strip("()").split(",") if v.strip())
    assert detect_layout(rows) == layout
    mapped = map_released_keys({k: torch.empty(s) for k, s in rows.items()}, layout)
    own = {k: tuple(v.shape) for k, v in build_model(preset).state_dict().items()}
    assert {k: tuple(v.shape) for k, v in mapped.items()} == own


# -- issue 13 item 6: checkpoint messages, and the one explicit way to convert a trusted file --


def _pickled_file(tmp_path, official_state):
    p = tmp_path / "trusted_old.pth"
    torch.save({"state_dict": dict(official_state), "obj": _Payload(), "epoch": 19}, p)
    return p


def test_pickled_objects_message_is_ours_and_says_what_to_do(tmp_path, official_state):
    """Before: torch's first line, cut, with ANSI codes ("\\x1b[1mdo those steps only if")."""
    p = _pickled_file(tmp_path, official_state)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_released_checkpoint(p)
    msg = str(err.value)
    assert "\x1b" not in msg and "Weights only load failed" not in msg, msg
    assert "_Payload" in msg and "weights_only=True" in msg  # what was found, and why
    assert f"siammask-edu convert-checkpoint {p}" in msg and "--trust" in msg
    assert any(g.endswith("_Payload") for g in err.value.found)
    assert isinstance(err.value, CheckpointError)  # still a CheckpointError / ValueError


def test_convert_refuses_a_pickled_file_without_trust(tmp_path, official_state, monkeypatch):
    p = _pickled_file(tmp_path, official_state)
    seen = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only"))
                        or real(*a, **k))
    with pytest.raises(UnsafeCheckpointError, match="trust=True"):
        convert_checkpoint(p, tmp_path / "out.pth")
    assert seen == [True] and not (tmp_path / "out.pth").exists()


def test_convert_a_trusted_file(tmp_path, official_state, seeded_sharp):
    p = _pickled_file(tmp_path, official_state)
    out = tmp_path / "converted.pth"
    info = convert_checkpoint(p, out, trust=True)
    assert info["path"] == out and info["layout"] == "official" and info["preset"] == "sharp"
    assert info["dropped"] == ["epoch", "obj"] and info["trusted"] is True
    raw = torch.load(out, weights_only=True)  # the result needs no trust
    assert raw["extra"]["converted_from"] == p.name
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values()
               if v.is_floating_point())  # an fp16 file stays fp16
    _same_weights(load_checkpoint(out), seeded_sharp)
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_checkpoint(p, out, trust=True)
    # a file that is already weights-only converts without trust (layout -> ours)
    info = convert_checkpoint(out, tmp_path / "again.pth")
    assert info["trusted"] is False and info["dropped"] == []


def test_convert_checkpoint_command(tmp_path, official_state, capsys):
    from siammask_edu.cli import main

    p = _pickled_file(tmp_path, official_state)
    out = tmp_path / "cli.pth"
    assert main(["convert-checkpoint", str(p), str(out)]) == 2
    err = capsys.readouterr().err
    assert "--trust" in err and "\x1b" not in err and not out.exists()
    assert main(["convert-checkpoint", str(p), str(out), "--trust"]) == 0
    assert "loads with weights_only=True" in capsys.readouterr().out
    assert load_checkpoint(out).config.name == "sharp"


def test_weights_only_false_appears_in_one_place_only():
    """The trusted conversion is the only code that may unpickle objects: every torch.load
    of the package passes weights_only=True, except one, in checkpoint._load_trusted."""
    import ast
    import pathlib

    import siammask_edu

    pkg = pathlib.Path(siammask_edu.__file__).parent
    loads = []

    class Visitor(ast.NodeVisitor):
        def __init__(self, name):
            self.file, self.fn = name, ""

        def visit_FunctionDef(self, node):
            outer, self.fn = self.fn, node.name
            self.generic_visit(node)
            self.fn = outer

        def visit_Call(self, node):
            if ast.unparse(node.func).endswith("torch.load"):
                kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                loads.append((self.file, self.fn, kw.get("weights_only")))
            self.generic_visit(node)

    for f in sorted(pkg.rglob("*.py")):
        Visitor(f.name).visit(ast.parse(f.read_text()))
    assert len(loads) >= 3
    unsafe = {(f, fn, v) for f, fn, v in loads if v != "True"}
    assert unsafe == {("checkpoint.py", "_load_trusted", "False")}, unsafe


def test_strict_false_warns_with_the_missing_names(tmp_path, official_state):
    """Before: a sharp model with its 32 refinement tensors missing loaded without a word."""
    st = {k: v for k, v in official_state.items() if not k.startswith("refine_model.")}
    st["mask_model.mask.head.3.weight"] = torch.zeros(100, 256, 1, 1)
    p = tmp_path / "base.pth"
    torch.save(st, p)
    with pytest.warns(UserWarning) as rec:
        m = load_released_checkpoint(p, preset="sharp", strict=False)
    msg = " ".join(str(w.message) for w in rec)
    assert "strict=False" in msg and "32 of" in msg and "refine.deconv.weight" in msg, msg
    assert "mask_head.head.3.weight" in msg  # a wrong shape is skipped and named, not a crash
    assert m.refine is not None


def test_anchor_count_mismatch_says_anchors(tmp_path, official_state):
    st = dict(official_state)
    for name, per in (("rpn_model.cls.head.3", 2), ("rpn_model.loc.head.3", 4)):
        st[name + ".weight"] = st[name + ".weight"][:3 * per]
        st[name + ".bias"] = st[name + ".bias"][:3 * per]
    p = tmp_path / "three_anchors.pth"
    torch.save(st, p)
    with pytest.raises(CheckpointError, match=r"anchors: the checkpoint has 3 anchors per "
                                              r"position, the 'sharp' model 5"):
        load_released_checkpoint(p)


def test_one_missing_refine_key_is_not_a_base_checkpoint(tmp_path, official_state):
    st = dict(official_state)
    gone = min(k for k in st if k.startswith("refine_model."))
    del st[gone]
    p = tmp_path / "damaged.pth"
    torch.save(st, p)
    with pytest.raises(CheckpointError) as err:
        load_released_checkpoint(p)
    msg = str(err.value)
    assert "1 of 32" in msg and "looks like a base-model" not in msg, msg
    assert gone.replace("refine_model.", "refine.") in msg
