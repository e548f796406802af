"""The book opens in JupyterLab as the README's "Read the book" says: a JupyterLab server,
started here on 127.0.0.1 from this environment, serves every `.py` chapter as a notebook
(jupytext's contents manager) with the `python3` kernel, has "Jupytext Notebook" as the
default viewer of Python files (what a double-click uses; README set-up command 1 writes
it into the environment with `jupytext-config`), and saving the notebook writes the same
`.py` back and nothing else. The chapters' header also lets `jupytext --execute` find that
kernel.

The server (tests/lab_server.py) reads this environment's Jupyter configuration
({sys.prefix}/etc/jupyter and {sys.prefix}/share/jupyter), but not the user's own
(~/.jupyter, ~/.local/share/jupyter): JUPYTER_CONFIG_DIR and JUPYTER_DATA_DIR point into a
temporary folder, so that a reader's personal Lab settings or kernels can neither hide nor
fake what the set-up installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (README set-up command "
                                         "1 installs it with the `book` extra)")

from lab_server import LabServer, running_lab  # tests/lab_server.py

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.py"))
KERNEL = "python3"  # the kernel every chapter's header names: ipykernel's, in the venv
DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"
SET_VIEWER_HINT = (
    "run README set-up command 1's step in this environment: `jupytext-config --settings-file "
    f"{Path(sys.prefix) / 'etc/jupyter/labconfig/default_setting_overrides.json'} "
    "set-default-viewer python`")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabServer:
    with running_lab(tmp_path_factory.mktemp("lab")) as server:
        yield server


def _header(path: Path) -> str:
    text = path.read_text()
    return text[:text.index("# %%")]


def test_chapters_found():
    assert len(CHAPTERS) >= 11, f"expected the book's chapters in {ROOT / 'book'}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_header_names_the_kernel(chapter):
    # jupytext writes exactly this header under pyproject's notebook_metadata_filter
    # "kernelspec,-all"; anything else would be rewritten by the first save from Lab.
    assert _header(chapter) == (
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3 (ipykernel)\n"
        "#     language: python\n#     name: python3\n# ---\n\n"), \
        f"{chapter.name}: the jupytext header above the first `# %%` must name the python3 kernel"


def test_jupytext_execute_finds_the_chapters_kernel(tmp_path):
    """`jupytext --execute` of a file with a chapter's header runs in this venv's Python
    (without a kernelspec it fails: "No kernel found that matches the current python
    executable"). A probe cell instead of a chapter: the chapters themselves are executed by
    scripts/test.sh and need the datasets."""
    probe = tmp_path / "probe.py"
    probe.write_text(_header(CHAPTERS[0]) + "# %%\nimport sys\nprint(sys.prefix)\n")
    env = dict(os.environ, JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    res = subprocess.run([sys.executable, "-m", "jupytext", "--execute", "--to", "ipynb",
                          str(probe)], check=False, capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    nb = json.loads(probe.with_suffix(".ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == KERNEL
    (out,) = nb["cells"][0]["outputs"]
    text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
    assert Path(text.strip()) == Path(sys.prefix), "the kernel ran outside this environment"


def test_lab_serves_every_chapter_as_a_notebook(lab):
    specs = lab.request("GET", "/api/kernelspecs")["kernelspecs"]
    assert KERNEL in specs, f"no {KERNEL} kernel in this environment: {sorted(specs)}"
    for chapter in CHAPTERS:
        rel = chapter.relative_to(ROOT).as_posix()
        model = lab.request("GET", f"/api/contents/{rel}?type=notebook&content=1")
        assert model["type"] == "notebook" and model["format"] == "json", \
            f"{rel} served as {model['type']}/{model['format']}: jupytext's contents manager " \
            f"is not active (jupyter server extension `jupyterlab_jupytext`)"
        nb = model["content"]
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
        assert code and markdown, f"{rel}: {len(code)} code and {len(markdown)} markdown cells"
        assert nb["cells"][0]["cell_type"] == "markdown", f"{rel}: the header became a cell"
        assert nb["metadata"]["kernelspec"]["name"] == KERNEL, nb["metadata"]


def test_lab_opens_python_files_as_notebooks_by_default(lab):
    # Lab's page reads the plugin's defaults, overrides applied, from the schema it is sent
    # (the user's own settings, none here, would come on top of them)
    settings = lab.request("GET", f"/lab/api/settings/{DOCMANAGER}")
    viewers = settings["schema"]["properties"]["defaultViewers"].get("default", {})
    current = viewers.get("python", "its text editor")
    assert current == "Jupytext Notebook", (
        f"JupyterLab's default viewer for Python files is {current!r}, so a double-click "
        f"opens a chapter as text: {SET_VIEWER_HINT}")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_saving_from_lab_keeps_the_py_as_the_only_source(lab, chapter):
    """Lab saves a notebook with PUT: the `.py` comes back byte for byte (only the
    kernelspec is kept in the header, cell tags kept, outputs dropped) and no `.ipynb`
    appears beside it. The copy goes to a fresh folder under the git-ignored `out/`, so that
    the repository's pyproject [tool.jupytext] applies and no chapter is rewritten. A
    chapter whose text jupytext would write differently (say a blank line inside a markdown
    cell, which comes back as `#`) fails here: saving it from Lab would change it."""
    rel = chapter.relative_to(ROOT).as_posix()
    source = chapter.read_bytes()
    model = lab.request("GET", f"/api/contents/{rel}?type=notebook&content=1")
    nb = model["content"]
    # what a reader's session adds before saving: outputs and the kernel's language_info
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
            cell["execution_count"] = 1
    nb["metadata"]["language_info"] = {"name": "python", "version": sys.version.split()[0]}
    out = ROOT / "out"
    made_out = not out.exists()
    out.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="test_book_lab-", dir=out))
    try:
        saved_rel = (scratch / chapter.name).relative_to(ROOT).as_posix()
        lab.request("PUT", f"/api/contents/{saved_rel}",
                    {"type": "notebook", "format": "json", "content": nb})
        saved = scratch / chapter.name
        assert sorted(p.name for p in scratch.iterdir()) == [chapter.name], \
            "saving a chapter must write only its .py (no paired .ipynb)"
        assert saved.read_bytes() == source, (
            f"saving {chapter.name} from Lab changes it; first differing line: "
            + next((f"{i + 1}: {a!r} != {b!r}" for i, (a, b) in enumerate(
                zip(saved.read_text().splitlines(), source.decode().splitlines()))
                if a != b), "(one is a prefix of the other)"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if made_out:
            try:
                out.rmdir()  # only if still empty: the main job may have written there since
            except OSError:
                pass
