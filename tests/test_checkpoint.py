import collections
import warnings

import pytest
import torch

from siammask_edu import build_model, load_checkpoint, load_released_checkpoint, save_checkpoint
from siammask_edu.checkpoint import CheckpointError, detect_layout, map_released_keys

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
    with pytest.raises(CheckpointError, match=r"refine_model\.\* is missing \(32 keys\).*'base'"):
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
