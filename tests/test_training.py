"""Training loop: tiny preset, losses falling, exact resume, non-finite handling, schedules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from siammask_edu import training
from siammask_edu.datasets import (
    CustomSource,
    PairConfig,
    PairDataset,
    collate,
    write_synthetic_sequences,
)
from siammask_edu.training import NonFiniteLossError, TrainConfig, lr_at, train


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny tensors: a second thread only adds synchronisation (and stalls on a busy CPU)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return write_synthetic_sequences(tmp_path_factory.mktemp("synth"), 2, 6)


def tiny_cfg(root, **kw):
    base = dict(data=({"type": "custom", "root": str(root), "frame_range": 3},), epochs=2,
                pairs_per_epoch=4, batch_size=2, log_every=1, neg=0.2)
    base.update(kw)
    return TrainConfig.tiny(**base)


def test_tiny_run_writes_logs_and_finite_losses(synth_root, tmp_path):
    res = train(tiny_cfg(synth_root), tmp_path, progress=False)
    assert res["finished"] and res["step"] == 4 and not res["skipped"]
    for h in res["history"]:
        for k in ("total", "score", "box", "mask"):
            assert math.isfinite(h[k]), (k, h)
    for name in ("last.pth", "final.pth", "epoch_01.pth", "log.csv", "loss.png",
                 "summary.json", "config.json"):
        assert (tmp_path / name).is_file(), name
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 4
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == \
        tiny_cfg(synth_root)


def test_loss_falls_on_a_fixed_batch(synth_root):
    torch.manual_seed(0)
    cfg = tiny_cfg(synth_root)
    model = training.build_model_for(cfg)
    training.set_trainable(model, cfg, 0)
    training.set_modes(model, cfg)
    ds = PairDataset([CustomSource(synth_root, 3)], PairConfig(neg=0.0), seed=3)
    batch = collate([ds[i] for i in range(4)])
    trainer = training.SiamMaskTrainer(model, "base")
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05,
                          momentum=0.9)
    hist = []
    for _ in range(12):
        opt.zero_grad()
        out = trainer(batch)
        out["total"].backward()
        opt.step()
        hist.append({k: float(v.detach()) for k, v in out.items()})
    total = [h["total"] for h in hist]
    assert all(math.isfinite(v) for v in total)
    assert np.mean(total[-3:]) < 0.93 * np.mean(total[:3]), total
    for k in ("score", "box", "mask"):
        assert np.mean([h[k] for h in hist[-3:]]) < np.mean([h[k] for h in hist[:3]]), k


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_equals_uninterrupted(synth_root, tmp_path):
    # crosses an epoch boundary (LR change) and an unfreeze (optimiser rebuilt)
    cfg = tiny_cfg(synth_root, epochs=3, unfreeze_epoch=1, unfreeze=("backbone.layer3.",),
                   schedule="lite", warmup_epochs=1.0)
    full = train(cfg, tmp_path / "a", progress=False)
    part = train(cfg, tmp_path / "b", max_steps=3, progress=False)
    assert not part["finished"] and part["step"] == 3
    resumed = train(cfg, tmp_path / "b", resume=tmp_path / "b" / "last.pth", progress=False)
    assert resumed["finished"] and resumed["step"] == 6
    a, b = _state(full["model"]), _state(resumed["model"])
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the backbone block really trained after the unfreeze
    first = train(cfg, tmp_path / "c", max_steps=2, progress=False)["model"]
    k = next(n for n in a if n.startswith("backbone.layer3.") and n.endswith("conv1.weight"))
    assert not torch.equal(first.state_dict()[k], a[k])
    assert (tmp_path / "b" / "log.csv").read_text().count("\n") == 7


class _PoisonedBox(torch.utils.data.Dataset):
    """Wraps a dataset; item ``bad`` gets NaN box targets (only L_box becomes NaN)."""

    def __init__(self, ds, bad):
        self.ds, self.bad = ds, bad

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        item = dict(self.ds[i])
        if i == self.bad:
            item["label_loc"] = np.full_like(item["label_loc"], np.nan)
        return item


def _poisoned(synth_root, bad):
    ds = PairDataset([CustomSource(synth_root, 3)], PairConfig(neg=0.0), seed=0, length=4)
    return _PoisonedBox(ds, bad)


def test_nonfinite_loss_skip_names_iteration_and_component(synth_root, tmp_path):
    cfg = tiny_cfg(synth_root, neg=0.0)
    res = train(cfg, tmp_path, progress=False, dataset=_poisoned(synth_root, bad=5))
    assert len(res["skipped"]) == 1
    msg = res["skipped"][0]
    assert "iteration 2" in msg and "box=nan" in msg and "score" not in msg
    assert res["history"][2]["skipped"] == 1 and res["finished"]
    assert all(math.isfinite(v) for k, v in res["model"].state_dict().items()
               for v in [float(v.float().abs().sum())])


def test_nonfinite_loss_stop_raises(synth_root, tmp_path):
    cfg = tiny_cfg(synth_root, neg=0.0, nonfinite="stop")
    with pytest.raises(NonFiniteLossError, match=r"iteration 1: .*box=nan"):
        train(cfg, tmp_path, progress=False, dataset=_poisoned(synth_root, bad=2))


def test_schedules_match_paper_and_released():
    paper = TrainConfig(epochs=20, schedule="paper")
    assert lr_at(paper, 0) == pytest.approx(1e-3)
    assert lr_at(paper, 2.5) == pytest.approx(1e-3 + 4e-3 * 2 / 5)
    assert lr_at(paper, 5) == pytest.approx(5e-3)
    assert lr_at(paper, 19) == pytest.approx(5e-4)
    rel = TrainConfig(epochs=20, schedule="released")
    got = [lr_at(rel, e) for e in range(20)]
    want = [0.001, 0.00138, 0.001904, 0.002627, 0.003624, 0.005, 0.004758, 0.004529]
    assert got[:8] == pytest.approx(want, rel=2e-3)
    assert got[-1] == pytest.approx(0.0025)
    ref = TrainConfig(epochs=20, schedule="refine", lr=0.01, lr_end=0.0025)
    assert lr_at(ref, 1) == pytest.approx(0.009296, rel=1e-3)
    assert lr_at(ref, 19) == pytest.approx(0.0025)
    lite = TrainConfig.lite()
    assert lr_at(lite, 0.5) == pytest.approx(3e-3)
    assert lr_at(lite, 0.59 * lite.epochs) == lite.lr
    assert lr_at(lite, lite.epochs) == pytest.approx(lite.lr_end)


def test_refine_stage_trains_only_refinement(synth_root, tmp_path):
    base = train(tiny_cfg(synth_root, epochs=1), tmp_path / "base", progress=False)
    cfg = tiny_cfg(synth_root, stage="refine", init="previous", epochs=1, neg=0.0,
                   schedule="refine", lr=1e-2, lr_end=2.5e-3)
    res = train(cfg, tmp_path / "ref", previous=tmp_path / "base" / "final.pth",
                progress=False)
    before, after = base["model"].state_dict(), res["model"].state_dict()
    changed = {k.split(".")[0] for k in before
               if before[k].is_floating_point() and not torch.equal(before[k], after[k])}
    assert "refine" in changed
    assert changed <= {"refine", "mask_head"}, changed
    assert all(math.isfinite(h["mask"]) for h in res["history"])


def test_train_main_runs_a_config_file(synth_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stage = tiny_cfg(synth_root, epochs=1).to_dict()
    (tmp_path / "run.json").write_text(json.dumps(
        {"name": "t", "run_dir": "runs/t", "stages": [stage]}))
    assert training.train_main(tmp_path / "run.json") == 0
    assert (tmp_path / "runs" / "t" / "0_base" / "final.pth").is_file()
    (tmp_path / "bad.json").write_text(json.dumps({"stages": [{"preset": "nope"}]}))
    assert training.train_main(tmp_path / "bad.json") == 2
    assert training.train_main(tmp_path / "missing.json") == 2


# ---------------------------------------------------------------------------------------
# Recipe v2: variety field, configs, unfreezing with frozen BatchNorm
# ---------------------------------------------------------------------------------------

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_variety_field_round_trips_and_is_checked(synth_root):
    cfg = tiny_cfg(synth_root)
    assert cfg.variety == {}  # off by default: the v1 recipe
    v2 = cfg.replace(variety={"copy_paste": 0.2, "blur_len": [3, 9]})
    d = json.loads(json.dumps(v2.to_dict()))
    assert TrainConfig.from_dict(d) == v2
    d["variety"] = {"copypaste": 0.2}
    with pytest.raises(ValueError, match="copypaste"):
        TrainConfig.from_dict(d)


def test_v2_run_with_every_augmentation_trains(synth_root, tmp_path):
    variety = {"copy_paste": 0.5, "distractor": 0.5, "neg_same_class": 0.5, "scale": 0.5,
               "motion_blur": 0.5, "occlusion": 0.5}
    cfg = tiny_cfg(synth_root, epochs=1, variety=variety)
    res = train(cfg, tmp_path, progress=False)
    assert res["finished"] and not res["skipped"]
    assert all(math.isfinite(h["total"]) for h in res["history"])
    assert json.loads((tmp_path / "config.json").read_text())["variety"] == variety


def test_unfrozen_blocks_train_with_frozen_batchnorm(synth_root):
    # the lite network (no ImageNet download needed: init random) as v2 unfreezes it
    blocks = ("backbone.blocks.8.", "backbone.blocks.9.", "backbone.blocks.10.")
    cfg = tiny_cfg(synth_root, model="lite", unfreeze_epoch=1, unfreeze=blocks)
    model = training.build_model_for(cfg)
    training.set_trainable(model, cfg, 1)
    training.set_modes(model, cfg)
    names = [n for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    assert names and all(n.startswith(blocks) for n in names)
    assert any(n.startswith("backbone.blocks.8.") for n in names)
    bns = [m for n, m in model.backbone.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # released: BN statistics frozen
    before = {k: v.clone() for k, v in model.backbone.state_dict().items() if "running" in k}
    ds = PairDataset([CustomSource(synth_root, 3)], PairConfig(neg=0.0), seed=0)
    out = training.SiamMaskTrainer(model, "base")(collate([ds[0], ds[1]]))
    out["total"].backward()
    assert model.backbone.blocks[8].project[0].weight.grad is not None
    assert model.backbone.blocks[7].project[0].weight.grad is None
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_v2_and_ablation_configs():
    from siammask_edu.datasets import DAVIS2016_VAL

    run = training.load_run_config(REPO / "configs" / "train_lite_v2.json")
    base, ref = run["stages"]
    assert base.stage == "base" and base.init == "imagenet" and ref.stage == "refine"
    assert base.unfreeze == ("backbone.blocks.8.", "backbone.blocks.9.", "backbone.blocks.10.")
    assert base.bn_policy == "frozen" and 0 < base.unfreeze_epoch < base.epochs
    assert base.variety["copy_paste"] > 0 and base.variety["occlusion"] > 0
    assert "scale" not in ref.variety  # 3x3 RoWs of a 143 search: no strong scale
    abl = sorted((REPO / "configs" / "ablation").glob("*.json"))
    assert len(abl) >= 7 and abl[0].stem == "00_baseline"
    seen = set()
    for p in abl:
        raw = json.loads(p.read_text())
        (st,) = training.load_run_config(p)["stages"]
        held = raw["heldout"]
        assert len(held) == 5 and not set(held) & set(DAVIS2016_VAL)
        davis = [s for s in st.data if s["type"] == "davis"]
        assert davis and not set(davis[0]["sequences"]) & set(held)
        assert not set(davis[0]["sequences"]) & set(DAVIS2016_VAL)
        assert (st.total_steps, st.seed, st.batch_size, st.threads) == (600, 0, 16, 1)
        seen.add((json.dumps(st.variety, sort_keys=True), st.unfreeze_epoch))
    assert len(seen) == len(abl)  # one change each


# ---------------------------------------------------------------------------------------
# Extending and resuming runs
# ---------------------------------------------------------------------------------------


def _write_run(path, stages):
    path.write_text(json.dumps({"name": "t", "run_dir": "runs/t",
                                "stages": [s.to_dict() for s in stages]}))
    return path


def test_raising_epochs_of_a_finished_run_trains_the_new_epochs(synth_root, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_cfg(synth_root, epochs=1, schedule="constant", lr=0.02)
    run = _write_run(tmp_path / "run.json", [cfg])
    assert training.train_main(run) == 0
    stage = tmp_path / "runs" / "t" / "0_base"
    assert training.read_state_file(stage / "final.pth")["extra"]["step"] == 2
    _write_run(run, [cfg.replace(epochs=2)])
    capsys.readouterr()
    assert training.train_main(run, resume=True) == 0
    out, err = capsys.readouterr()
    assert "extending" in err and "1 -> 2 epochs" in err, err
    assert out.strip().splitlines()[-1] == f"finished: {Path('runs/t/0_base/final.pth')}"
    got = training.read_state_file(stage / "final.pth")
    assert got["extra"]["step"] == 4
    # the same as a run of 2 epochs from the start (constant LR)
    ref = train(cfg.replace(epochs=2), tmp_path / "ref", progress=False)["model"].state_dict()
    for k, v in ref.items():
        assert torch.equal(got["state_dict"][k], v), k
    assert (stage / "log.csv").read_text().count("\n") == 1 + 4
    assert (stage / "epoch_01.pth").is_file()
    # a finished run asked again with the same epochs: nothing to do, says so
    assert training.train_main(run, resume=True) == 0
    assert "already finished" in capsys.readouterr().err


def test_resume_says_why_it_cannot_continue(synth_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_cfg(synth_root, epochs=2)
    run = _write_run(tmp_path / "run.json", [cfg])
    assert training.train_main(run) == 0
    capsys.readouterr()
    _write_run(run, [cfg.replace(epochs=1)])  # fewer epochs than already trained
    assert training.train_main(run, resume=True) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "4 steps" in err and "epochs" in err, err
    _write_run(run, [cfg.replace(epochs=3, lr=0.01)])  # another setting changed
    assert training.train_main(run, resume=True) == 2
    err = capsys.readouterr().err
    assert "lr" in err and "0.005" in err and "0.01" in err, err
    # an earlier stage cannot be extended under a later one that started from it
    ref = tiny_cfg(synth_root, stage="refine", init="previous", epochs=1, neg=0.0,
                   schedule="refine", lr=1e-2, lr_end=2.5e-3)
    _write_run(run, [cfg, ref])
    assert training.train_main(run, resume=True) == 0
    capsys.readouterr()
    _write_run(run, [cfg.replace(epochs=3), ref])
    assert training.train_main(run, resume=True) == 2
    err = capsys.readouterr().err
    assert "1_refine" in err and "0_base" in err, err


def test_train_main_bad_settings_are_one_line_errors(synth_root, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.chdir(tmp_path)
    run = _write_run(tmp_path / "run.json", [tiny_cfg(synth_root, batch_size=3, grad_accum=2)])
    assert training.train_main(run) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
