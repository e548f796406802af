"""The book's widgets in a real browser: a JupyterLab server on 127.0.0.1
(tests/lab_server.py) and a headless Chromium driven by Playwright for Python.

For chapter 4 the test opens the chapter as a notebook ("Jupytext Notebook", as a reader's
double-click does), runs every cell (Lab's `notebook:run-all-cells`, the Run menu's "Run All
Cells"), then moves the RoW explorer (`widgets.RowMaskViewer`) to two other RoWs, once by
typing into the row slider's read-out and once with the arrow key on the column slider's
handle, and checks after each move that the picture the page shows (the PNG bytes of its
<img>) and the text under it (RoW, score, mask area) changed and name the new RoW. For
chapter 7 it moves the tracker stepper (`widgets.TrackerStepper`) one step back with the
arrow key and checks the same, then flips the score-map toggle. The widget's cell is saved as
a screenshot: out/browser/ch04_rows.png and out/browser/ch07_stepper.png (the paths are
printed). Each chapter runs on a copy in a scratch folder under the git-ignored out/, with
Lab's autosave off, so the book's `.py` files are never written.

The server's environment sets SIAMMASK_EDU_SHORT_RUNS=1 and one thread (as scripts/test.sh
runs the chapters), so that the kernel inherits them; MPLBACKEND is removed from it so that the
chapters' `%matplotlib inline` figures render as for a reader.

Chromium is Debian's `chromium` package (`apt-get install chromium`; .ci/run installs it),
never a browser downloaded by Playwright: the test looks for $SIAMMASK_EDU_CHROMIUM, then
`chromium`, `chromium-browser` on PATH. Without Playwright (the `test` extra installs it) or
Chromium the test is skipped with the reason; SIAMMASK_EDU_REQUIRE_BROWSER=1 makes that a
failure.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "out" / "browser"
CHROMIUM_ENV = "SIAMMASK_EDU_CHROMIUM"
REQUIRE_ENV = "SIAMMASK_EDU_REQUIRE_BROWSER"
FACTORY = "Jupytext Notebook"  # jupytext's notebook view of a .py file
LAUNCH_TIMEOUT_S = 60
LOAD_TIMEOUT_S = 180      # Lab's page and the kernel start, on two busy cores
RUN_ALL_TIMEOUT_S = 900   # one chapter, short runs, one thread: 1-4 min on two busy cores
UPDATE_TIMEOUT_S = 60     # one widget redraw: a kernel round trip
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _unavailable(reason: str):
    if os.environ.get(REQUIRE_ENV, "0") not in ("", "0"):
        pytest.fail(f"${REQUIRE_ENV} is set, but {reason}", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            _unavailable(f"${CHROMIUM_ENV}={env} is not an executable file")
        return env
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    _unavailable("Chromium not found (install Debian's package: `apt-get install chromium`, "
                 f"or point ${CHROMIUM_ENV} at a Chromium executable)")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (the `test` extra installs it: "
                     "`pip install -e .[test]`)")
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the `book` extra)")
    pytest.importorskip("ipywidgets", reason="ipywidgets is not installed (the `book` extra)")
    executable = _chromium()
    pw = sync_playwright().start()
    try:
        try:
            b = pw.chromium.launch(executable_path=executable, headless=True,
                                   timeout=LAUNCH_TIMEOUT_S * 1000)
        except PlaywrightError as e:  # a Chromium that cannot start here (libraries, sandbox)
            _unavailable(f"Chromium at {executable} does not start under Playwright: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}")
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    from lab_server import running_lab  # tests/lab_server.py

    env = {"SIAMMASK_EDU_SHORT_RUNS": "1", "SIAMMASK_EDU_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": None}
    settings = {
        # never write the opened notebook back (it is a scratch copy anyway)
        "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
        # every cell in the DOM, whatever the scroll position
        "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
        # no news or update checks: nothing outside 127.0.0.1, no pop-ups over the page
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                        "checkForUpdates": False},
    }
    args = ["--LabApp.expose_app_in_browser=True",  # window.jupyterapp: Lab's own commands
            "--LabApp.news_url="]
    with running_lab(tmp_path_factory.mktemp("lab-browser"), env=env, args=args,
                     user_settings=settings) as server:
        yield server


@pytest.fixture(scope="module")
def scratch():
    """A folder under out/ (git-ignored; the checkout's pyproject [tool.jupytext] applies)
    for the chapter copies; removed afterwards."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    folder = SHOTS / f"run-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- Lab, driven through its own command registry (window.jupyterapp) ----------------------

_WITH_TIMEOUT = """
const withTimeout = (p, ms, what) => Promise.race([p, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(what + ': no answer within ' + ms / 1000 + ' s')), ms))]);
"""

_OPEN = _WITH_TIMEOUT + """
async ({path, factory, ms}) => {
  const app = window.jupyterapp;
  await withTimeout(app.restored, ms, 'Lab start');
  const panel = await withTimeout(app.commands.execute('docmanager:open', {path, factory}),
                                  ms, 'open ' + path);
  await withTimeout(panel.context.ready, ms, 'load ' + path);
  await withTimeout(panel.sessionContext.ready, ms, 'kernel of ' + path);
  const t0 = Date.now();
  while (panel.sessionContext.session?.kernel?.status !== 'idle') {
    if (Date.now() - t0 > ms) throw new Error('kernel not idle within ' + ms / 1000 + ' s');
    await new Promise(r => setTimeout(r, 200));
  }
  app.shell.activateById(panel.id);
  window.__siammaskPanel = panel;
  return {factory: panel.context.factoryName || null,
          kernel: panel.sessionContext.session.kernel.name,
          cells: panel.content.widgets.length};
}
"""

_RUN_ALL = """
() => {
  window.__siammaskRunAll = null;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
      ok => { window.__siammaskRunAll = {ok: ok}; },
      e => { window.__siammaskRunAll = {ok: false, error: String(e)}; });
}
"""

_CELLS = """
() => window.__siammaskPanel.content.widgets
  .filter(c => c.model.type === 'code')
  .map(c => ({count: c.model.executionCount,
              source: c.model.sharedModel.getSource(),
              errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                .map(o => (o.traceback || []).join('\\n') || (o.ename + ': ' + o.evalue))}))
"""

# the picture a widget shows (the bytes behind its <img>) and its text
_VIEW = """
async ({image, label, readouts}) => {
  const img = document.querySelector('img.' + image);
  const text = document.querySelector('.' + label);
  if (!img || !text) return null;
  let bytes;
  try {  // a blob: URL that a redraw revoked meanwhile: the caller asks again
    bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  } catch (e) { return {stale: String(e)}; }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return {src: img.src, png: bytes.length > 8 && bytes[1] === 0x50 && bytes[2] === 0x4e,
          size: bytes.length, width: img.naturalWidth, height: img.naturalHeight,
          sha: Array.from(digest, b => b.toString(16).padStart(2, '0')).join(''),
          label: text.innerText.trim(),
          readouts: readouts.map(c => document.querySelector('.' + c + ' .widget-readout')
                                      ?.innerText.trim() ?? null)};
}
"""


def _cells_report(cells) -> str:
    lines = []
    for i, c in enumerate(cells):
        state = "not run" if c["count"] is None else f"[{c['count']}]"
        head = c["source"].strip().splitlines()[0][:80] if c["source"].strip() else ""
        lines.append(f"  code cell {i}: {state} {head}")
    return "\n".join(lines)


def _run_chapter(page, lab, scratch: Path, chapter: str) -> None:
    """Open a copy of book/<chapter> as a notebook and run all its cells; fail with the
    first error (or the cells' state on a timeout)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    src = ROOT / "book" / chapter
    assert src.is_file(), f"no chapter {src}"
    copy = scratch / chapter
    shutil.copyfile(src, copy)
    rel = copy.relative_to(ROOT).as_posix()
    page.goto(f"{lab.url}/lab?token={lab.token}", timeout=LOAD_TIMEOUT_S * 1000)
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.commands)",
                           timeout=LOAD_TIMEOUT_S * 1000)
    opened = page.evaluate(_OPEN, {"path": rel, "factory": FACTORY,
                                   "ms": LOAD_TIMEOUT_S * 1000})
    assert opened["kernel"] == "python3" and opened["cells"] > 1, opened
    t0 = time.monotonic()
    page.evaluate(_RUN_ALL)
    try:
        page.wait_for_function("() => window.__siammaskRunAll !== null",
                               timeout=RUN_ALL_TIMEOUT_S * 1000, polling=1000)
    except PlaywrightTimeout:
        _fail_with_shot(page, chapter, f"{chapter}: Run All did not finish within "
                        f"{RUN_ALL_TIMEOUT_S} s:\n{_cells_report(page.evaluate(_CELLS))}")
    result = page.evaluate("() => window.__siammaskRunAll")
    cells = page.evaluate(_CELLS)
    errors = [(i, c) for i, c in enumerate(cells) if c["errors"]]
    if errors:
        i, c = errors[0]
        _fail_with_shot(page, chapter, f"{chapter}: code cell {i} raised in the browser's "
                        f"kernel:\n{c['source'][:600]}\n---\n{ANSI.sub('', c['errors'][0])}")
    not_run = [i for i, c in enumerate(cells) if c["count"] is None]
    if not result.get("ok") or not_run:
        _fail_with_shot(page, chapter, f"{chapter}: Run All ended with {result}, cells not "
                        f"run: {not_run}\n{_cells_report(cells)}")
    print(f"{chapter}: {len(cells)} code cells ran in {time.monotonic() - t0:.0f} s")


def _fail_with_shot(page, chapter: str, message: str):
    from playwright.sync_api import Error as PlaywrightError

    shot = SHOTS / f"{Path(chapter).stem}_failure.png"
    try:
        page.screenshot(path=str(shot), full_page=False, timeout=30_000)
        message += f"\n(screenshot of the page: {shot})"
    except PlaywrightError as e:  # the message matters more than the picture
        message += f"\n(no screenshot: {e})"
    pytest.fail(message, pytrace=False)


def _view(page, prefix: str, readouts) -> dict:
    for _ in range(20):
        view = page.evaluate(_VIEW, {"image": f"{prefix}-image", "label": f"{prefix}-label",
                                     "readouts": [f"{prefix}-{r}" for r in readouts]})
        assert view is not None, f"no .{prefix}-image / .{prefix}-label in the page"
        if "stale" not in view:
            return view
        time.sleep(0.25)
    raise AssertionError(f"the widget's <img> could not be read: {view['stale']}")


def _settled_view(page, prefix: str, readouts, chapter: str) -> dict:
    """The widget's view once two polls in a row agree (the chapter's later cells may still
    be redrawing it when Run All returns)."""
    deadline = time.monotonic() + UPDATE_TIMEOUT_S
    last = _view(page, prefix, readouts)
    while True:
        time.sleep(0.5)
        view = _view(page, prefix, readouts)
        if (view["sha"], view["label"], view["readouts"]) == (last["sha"], last["label"],
                                                               last["readouts"]):
            return view
        if time.monotonic() > deadline:
            _fail_with_shot(page, chapter, f"the widget kept changing for {UPDATE_TIMEOUT_S} s")
        last = view


def _wait_for_redraw(page, prefix: str, readouts, before: dict, expect: str,
                     chapter: str) -> dict:
    """Poll until the picture's bytes differ from ``before``'s and the text contains
    ``expect``, the same on two polls in a row (the image and the text are two widgets whose
    updates reach the page separately)."""
    deadline = time.monotonic() + UPDATE_TIMEOUT_S
    last = None
    while True:
        view = _view(page, prefix, readouts)
        done = view["sha"] != before["sha"] and expect in view["label"]
        if done and last is not None and (last["sha"], last["label"]) == (view["sha"],
                                                                          view["label"]):
            return view
        last = view if done else None
        if time.monotonic() > deadline:
            _fail_with_shot(page, chapter, f"the widget did not redraw within "
                            f"{UPDATE_TIMEOUT_S} s (expected a new picture and {expect!r} in "
                            f"its text):\nbefore: {before['label']!r} {before['sha'][:12]}\n"
                            f"now:    {view['label']!r} {view['sha'][:12]}\n"
                            f"readouts {view['readouts']}")
        time.sleep(0.25)


def _shot_of_cell(page, css: str, name: str) -> Path:
    path = SHOTS / name
    cell = page.locator(".jp-Cell", has=page.locator(f".{css}")).first
    cell.scroll_into_view_if_needed(timeout=30_000)
    cell.screenshot(path=str(path), timeout=30_000)
    assert path.stat().st_size > 10_000, f"{path} is nearly empty"
    return path


def _announce(capsys, text: str) -> None:
    print(text)
    with capsys.disabled():  # also in the log of a run that captures output
        print(f"\n{text}")


def _score(label: str) -> float:
    m = re.search(r"score (-?[0-9.]+)", label)
    assert m, f"no score in the viewer's text {label!r}"
    return float(m.group(1))


def test_widget_css_classes_without_a_browser():
    """The classes the browser test looks for are on the widgets (no browser needed)."""
    pytest.importorskip("ipywidgets")
    import numpy as np

    from siammask_edu.viz import widgets

    viewer = widgets.RowMaskViewer(np.zeros((3969, 25, 25), np.float32),
                                   np.arange(625, dtype=np.float32))
    for name, css in widgets.RowMaskViewer.CSS_CLASSES.items():
        assert css in getattr(viewer, name)._dom_classes, (name, css)
    assert set(widgets.TrackerStepper.CSS_CLASSES) == {"widget", "slider", "score_map",
                                                         "image", "label"}


def test_chapter_4_row_explorer_in_chromium(browser, lab, scratch, capsys):
    chapter, prefix = "04_rows_anchors_heads.py", "siammask-row-viewer"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(LOAD_TIMEOUT_S * 1000)
    try:
        _run_chapter(page, lab, scratch, chapter)
        box = page.locator(f".{prefix}").first
        box.wait_for(state="visible", timeout=LOAD_TIMEOUT_S * 1000)
        box.scroll_into_view_if_needed()
        a = _settled_view(page, prefix, ["row", "col"], chapter)
        assert a["png"] and a["width"] > 500 and a["height"] >= 250, a
        r0, c0 = int(a["readouts"][0]), int(a["readouts"][1])
        assert f"row={r0}, col={c0}" in a["label"], a

        # move 1: type another row into the row slider's read-out (the far edge of the grid)
        r1 = 0 if r0 >= 12 else 24
        readout = page.locator(f".{prefix}-row .widget-readout")
        readout.click()
        readout.fill(str(r1))
        readout.press("Enter")
        b = _wait_for_redraw(page, prefix, ["row", "col"], a, f"row={r1}, col={c0}", chapter)
        # move 2: one column with the arrow key on the column slider's handle
        c1 = c0 + 1 if c0 < 24 else c0 - 1
        handle = page.locator(f".{prefix}-col .noUi-handle")
        handle.focus()
        handle.press("ArrowRight" if c1 > c0 else "ArrowLeft")
        c = _wait_for_redraw(page, prefix, ["row", "col"], b, f"row={r1}, col={c1}", chapter)

        for before, after in ((a, b), (b, c)):
            moved = f"{before['label']!r} -> {after['label']!r}"
            assert after["png"] and after["sha"] != before["sha"], \
                f"the displayed mask picture did not change: {moved}"
            assert after["label"] != before["label"], f"the score text did not change: {moved}"
        assert c["readouts"] == [str(r1), str(c1)], c["readouts"]
        scores = [_score(v["label"]) for v in (a, b, c)]
        # the viewer opens at the best-scoring RoW; the far row scores lower
        assert scores[0] == max(scores) and scores[1] != scores[0], scores
        shot = _shot_of_cell(page, prefix, "ch04_rows.png")
        _announce(capsys, f"chapter 4 RoW explorer: ({r0},{c0}) -> ({r1},{c0}) -> ({r1},{c1}), "
                          f"scores {scores}; screenshot {shot}")
    finally:
        page.close()


def test_chapter_7_tracker_stepper_in_chromium(browser, lab, scratch, capsys):
    chapter, prefix = "07_online_tracker.py", "siammask-stepper"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(LOAD_TIMEOUT_S * 1000)
    try:
        _run_chapter(page, lab, scratch, chapter)
        box = page.locator(f".{prefix}").first
        box.wait_for(state="visible", timeout=LOAD_TIMEOUT_S * 1000)
        box.scroll_into_view_if_needed()
        a = _settled_view(page, prefix, ["step"], chapter)
        assert a["png"] and a["width"] > 900 and a["height"] >= 250, a
        s0 = int(a["readouts"][0])
        assert s0 > 0, f"the chapter leaves the stepper at its last step, got step {s0}"
        frame0 = re.search(r"frame (\d+)", a["label"])
        assert frame0, a["label"]

        # one step back, with the arrow key on the slider's handle
        handle = page.locator(f".{prefix}-step .noUi-handle")
        handle.focus()
        handle.press("ArrowLeft")
        frame1 = int(frame0.group(1)) - 1
        b = _wait_for_redraw(page, prefix, ["step"], a, f"frame {frame1} ", chapter)
        assert b["readouts"] == [str(s0 - 1)], b["readouts"]
        assert b["png"] and b["sha"] != a["sha"], "the displayed picture did not change"
        assert b["label"] != a["label"]

        # the score-map toggle: the raw fg probability instead of the penalised score
        page.locator(f".{prefix}-score-map button", has_text="fg probability").click()
        c = _wait_for_redraw(page, prefix, ["step"], b, b["label"], chapter)
        assert c["label"] == b["label"] and c["readouts"] == b["readouts"], (b, c)
        shot = _shot_of_cell(page, prefix, "ch07_stepper.png")
        _announce(capsys, f"chapter 7 tracker stepper: step {s0} -> {s0 - 1} "
                          f"({a['label'][:60]!r} -> {b['label'][:60]!r}), then the fg map; "
                          f"screenshot {shot}")
    finally:
        page.close()


def test_double_click_opens_a_chapter_as_a_notebook(browser, lab, capsys):
    """What README "Read the book" promises: in JupyterLab's file browser, a double-click on
    ``book/01_siamese_tracking.py`` opens a notebook (jupytext's viewer, made the default
    for ``.py`` by set-up command 1), not the text editor."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{lab.url}/lab/tree/book?token={lab.token}",
                  timeout=LOAD_TIMEOUT_S * 1000)
        item = page.locator(".jp-DirListing-item", has_text="01_siamese_tracking.py").first
        item.wait_for(state="visible", timeout=LOAD_TIMEOUT_S * 1000)
        item.dblclick()
        panel = page.locator(".jp-NotebookPanel:visible").first
        try:
            panel.wait_for(state="visible", timeout=LOAD_TIMEOUT_S * 1000)
        except Exception:  # noqa: BLE001 - report what opened instead, with a screenshot
            shot = SHOTS / "ch01_double_click_failed.png"
            page.screenshot(path=str(shot))
            editors = page.locator(".jp-FileEditor:visible").count()
            pytest.fail(f"double-click did not open a notebook ({editors} text editor(s) "
                        f"open instead); screenshot {shot}")
        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current "
                           ".lm-TabBar-tabLabel").first
        assert "01_siamese_tracking.py" in tab.inner_text()
        # cells, not one block of text (they render as the notebook's content arrives)
        page.wait_for_function(
            "() => document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length > 10",
            timeout=LOAD_TIMEOUT_S * 1000)
        shot = SHOTS / "ch01_double_click.png"
        page.screenshot(path=str(shot))
        _announce(capsys, f"double-click opened book/01_siamese_tracking.py as a notebook; "
                          f"screenshot {shot}")
    finally:
        page.close()
