"""The official VOT toolkit (vot-toolkit 0.7.4, the ``vot`` extra) runs our TraX server on the
VOT sequences of the data root and its numbers are compared with ``siammask_edu.metrics.vot``.

Model: the shipped SiamMask-Lite weights when this build has them, else the seeded (random)
sharp checkpoint of the fixtures. The seeded model is slow on a CPU, so by default each
sequence is cut to its first ``SIAMMASK_EDU_VOT_FRAMES`` frames (default 30); A and the
failures are then compared, EAO is not defined (no fragment reaches length 100).
``SIAMMASK_EDU_VOT_FRAMES=0`` runs the whole sequences and compares EAO too. The facts
behind the set-up are in docs/vot_toolkit.md.

See book/10_measuring.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trax", reason="the 'vot' extra (vot-trax) is not installed")
try:  # attributee 0.1.10 breaks 'import vot' on Python >= 3.11: say so rather than fail
    import vot  # noqa: F401
except Exception as exc:  # noqa: BLE001 - any import failure means: no usable toolkit
    pytest.skip(f"the 'vot' extra (vot-toolkit) is not importable: {exc}",
                allow_module_level=True)

import siammask_edu
from siammask_edu.metrics import vot as ours
from siammask_edu.paths import data_root

STACK = """title: VOT2018 baseline, local (no dataset URL)
experiments:
  baseline:
    type: supervised
    repetitions: 1
    skip_initialize: 5
    analyses:
      - type: supervised_average_ar
        sensitivity: 30
      - type: supervised_eao_score
        low: 100
        high: 356
"""


def _model_spec() -> tuple[str, str]:
    from siammask_edu import tracker as tracker_mod

    try:
        path = tracker_mod.pretrained_path("lite", None)
        if Path(str(path)).is_file():
            return "lite", "the shipped SiamMask-Lite weights"
    except (AttributeError, OSError, ValueError, TypeError):
        pass
    from siammask_edu.paths import reference_root

    try:
        ck = reference_root() / "fixtures" / "siammask_sharp_seed1.f16.pth"
    except FileNotFoundError as exc:
        pytest.skip(f"no model: no lite weights and no fixtures ({exc})")
    return str(ck), "the seeded (random-weight) sharp checkpoint"


def _vot(args: list[str], ws: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("vot")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "vot"]
    r = subprocess.run(cmd + args, check=False, cwd=ws, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"vot {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def _workspace(tmp: Path, n_frames: int, model: str) -> tuple[Path, dict, dict]:
    src = data_root() / "vot"
    seqs = [ln.strip() for ln in (src / "list.txt").read_text().splitlines() if ln.strip()]
    ws = tmp / "ws"
    ws.mkdir()  # `vot initialize` needs an existing folder
    (ws / "stack.yaml").write_text(STACK)
    env = dict(os.environ, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               VOT_PERSISTENT_CACHE="0", VOT_RESULTS_BINARY="0", PYTHONUNBUFFERED="1")
    # a relative stack name is looked up among the built-in stacks only: pass an absolute path
    _vot(["initialize", str(ws / "stack.yaml"), "--workspace", str(ws), "--nodownload"],
         ws, env, 120)
    assert (ws / "config.yaml").is_file(), "vot initialize did not create the workspace"
    gts = {}
    for s in seqs:
        gt = ours.read_trajectory(src / s / "groundtruth.txt")
        n = len(gt) if n_frames <= 0 else min(n_frames, len(gt))
        d = ws / "sequences" / s
        d.mkdir(parents=True)
        os.symlink((src / s / "color").resolve(), d / "color")
        (d / "groundtruth.txt").write_text("".join(ours.format_region(g) + "\n"
                                                   for g in gt[:n]))
        (d / "sequence").write_text(f"channels.color=color/%08d.jpg\nlength={n}\n")
        gts[s] = gt[:n]
    (ws / "sequences" / "list.txt").write_text("\n".join(seqs) + "\n")
    (ws / "trackers.ini").write_text(
        "[siammask]\n"
        "label = siammask-edu\n"
        "protocol = traxpython\n"
        # the adapter replaces PYTHONPATH by `paths`: name the folder holding siammask_edu
        f"paths = {Path(siammask_edu.__file__).resolve().parents[1]}\n"
        # a bare module name runs as `python -m NAME` without arguments; anything else is
        # run as Python code (`python -c "import sys; ...; CODE"`)
        "command = from siammask_edu.integrations.vot_trax import main; "
        f"main(['--checkpoint', '{model}', '--config', 'vot', '--threads', '2'])\n"
        "timeout = 600\n"  # long enough for loading the model before the handshake
    )
    return ws, env, gts


def _toolkit_numbers(ws: Path) -> dict:
    """A, R and EAO from ``vot analysis --format json`` (0.7.4 layout: per analysis of the
    stack, in order, one entry per tracker)."""
    files = sorted((ws / "analysis").rglob("*.json"))
    assert files, "vot analysis wrote no JSON"
    exp = json.loads(files[-1].read_text())["results"]["baseline"]
    types = [a["type"].rsplit(".", 1)[-1] for a in exp["parameters"]["analyses"]]
    ar = exp["results"][types.index("AverageAccuracyRobustness")][0]
    eao = exp["results"][types.index("EAOScore")][0]
    return {"accuracy": float(ar[0]), "robustness": float(ar[1]), "eao": float(eao[0])}


@pytest.mark.skipif(shutil.which("ldd") is None and sys.platform != "linux",
                    reason="libtrax is Linux-only here")
def test_toolkit_baseline_matches_our_metrics(tmp_path):
    n_frames = int(os.environ.get("SIAMMASK_EDU_VOT_FRAMES", "30"))
    model, what = _model_spec()
    ws, env, gts = _workspace(tmp_path, n_frames, model)
    ev = _vot(["evaluate", "--workspace", str(ws), "siammask"], ws, env, 3600)
    # `vot evaluate` exits with 0 even when the tracker failed: look at its output
    assert "error" not in (ev.stdout + ev.stderr).lower(), ev.stdout + ev.stderr
    _vot(["analysis", "--workspace", str(ws), "siammask", "--format", "json", "--name", "t"],
         ws, env, 600)
    numbers = _toolkit_numbers(ws)
    # our metrics on the toolkit's own result files
    results, sizes = {}, {}
    for s, gt in gts.items():
        f = next((ws / "results" / "siammask" / "baseline" / s).glob(f"{s}_001.txt"), None)
        assert f is not None, f"no text result for {s} (VOT_RESULTS_BINARY=0 missing?)"
        results[s] = ours.read_trajectory(f)
        from siammask_edu.io import read_image

        h, w = read_image(ws / "sequences" / s / "color" / "00000001.jpg").shape[:2]
        sizes[s] = (w, h)
        assert len(results[s]) == len(gt)
    r = ours.evaluate_vot(results, gts, sizes)
    # the toolkit's A (AverageAccuracyRobustness) is the mean of the per-sequence accuracies
    # weighted by sequence length, like its R (with 30 frames each: the plain mean)
    acc_seq = {row["sequence"]: row["accuracy"] for row in r["per_sequence"]}
    n_total = sum(len(g) for g in gts.values())
    ours_acc = sum(np.nan_to_num(acc_seq[s]) * len(gts[s]) for s in gts) / n_total
    fails = {row["sequence"]: row["failures"] for row in r["per_sequence"]}
    # toolkit R: sum over sequences of failures weighted by length / total length
    ours_r = sum(fails[s] * len(gts[s]) for s in gts) / n_total
    print(f"model: {what}; frames/sequence: {n_frames or 'all'}")
    print(f"toolkit: {numbers}")
    print(f"ours: accuracy {ours_acc:.6f} (pooled {r['accuracy']:.6f}), failures {fails}, "
          f"R (length-weighted) {ours_r:.6f}, EAO {r['eao']}")
    # a sequence without a known frame (all inside the burn-in) is NaN for us, 0 for it;
    # per sequence the two agree to ~1e-4 (both rasterise; measured on bag and book)
    assert numbers["accuracy"] == pytest.approx(ours_acc, abs=1e-3)
    assert numbers["robustness"] == pytest.approx(ours_r, abs=1e-9)
    if n_frames <= 0:  # EAO: different fragment rules (docs/vot_toolkit.md), same scale
        assert numbers["eao"] == pytest.approx(r["eao"]["VOT2018"], abs=0.05)
    else:  # no fragment reaches the window 100-356
        assert np.isnan(numbers["eao"]) and np.isnan(r["eao"]["VOT2018"])
