"""What a plain (non-editable) ``pip install`` ships: every package folder, the samples of
``data_samples/`` (``siammask-edu track bunny``) and the weights folder."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_package_list_names_every_package_folder():
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "siammask_edu").rglob("__init__.py")}
    listed = set(_setuptools()["packages"])
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert listed - found == {"siammask_edu.data_samples"}
    assert _setuptools()["package-dir"] == {"siammask_edu.data_samples": "data_samples"}


def test_wheel_holds_samples_and_weights_folder(tmp_path):
    pytest.importorskip("setuptools")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("siammask_edu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sample in (ROOT / "data_samples").iterdir():
        if sample.is_dir():
            for f in sample.rglob("*"):
                if f.is_file():
                    rel = f.relative_to(ROOT / "data_samples").as_posix()
                    assert f"siammask_edu/data_samples/{rel}" in names
    assert "siammask_edu/weights/MODEL_CARD.md" in names
    shipped = ROOT / "siammask_edu" / "weights" / "siammask_lite.pth"
    assert ("siammask_edu/weights/siammask_lite.pth" in names) == shipped.is_file()
    assert not any(n.startswith(("tests/", "book/", "runs/")) for n in names)
