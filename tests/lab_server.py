"""A JupyterLab server for the tests: started on 127.0.0.1 from this environment, with a
random token, and isolated from the user's own Jupyter set-up.

The server reads this environment's Jupyter configuration ({sys.prefix}/etc/jupyter and
{sys.prefix}/share/jupyter), but not the user's own (~/.jupyter, ~/.local/share/jupyter):
JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR and JUPYTER_RUNTIME_DIR point into a temporary folder,
so that a reader's personal Lab settings or kernels can neither hide nor fake what the set-up
installed. Used by tests/test_book_lab.py and tests/test_browser_widgets.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 90  # a cold `jupyter lab` on two busy cores takes 5-20 s
REQUEST_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A running server: ``url`` (no trailing slash), ``token``, the process and its log."""

    def __init__(self, url: str, token: str, proc: subprocess.Popen, log: Path,
                 config_dir: Path):
        self.url, self.token, self.proc, self.log = url, token, proc, log
        self.config_dir = config_dir

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as r:
                raw = r.read()
                return json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path} -> HTTP {e.code}: "
                                 f"{e.read()[:2000]!r}\n--- server log ---\n"
                                 f"{self.log_tail()}") from None


def write_user_settings(config_dir: Path, settings: Mapping[str, Mapping]) -> None:
    """Write Lab user settings into the isolated config folder before the server starts:
    ``{"@jupyterlab/docmanager-extension:plugin": {"autosave": False}, ...}``."""
    for plugin, values in settings.items():
        package, name = plugin.split(":")
        path = config_dir / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(values), indent=2))


@contextmanager
def running_lab(tmp: Path, *, env: Mapping[str, str | None] | None = None,
                args: Sequence[str] = (),
                user_settings: Mapping[str, Mapping] | None = None) -> Iterator[LabServer]:
    """Start ``jupyter lab`` (root folder: the checkout) and stop it on exit.

    Args:
        tmp: a fresh folder for the isolated config, data and runtime folders and the log.
        env: variables to set (``None``: remove) on top of this process's environment;
            the kernels inherit them.
        args: extra command-line options of ``jupyter lab``.
        user_settings: Lab user settings, see :func:`write_user_settings` (none by default).
    """
    port, token = free_port(), uuid.uuid4().hex
    config_dir = tmp / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    if user_settings:
        write_user_settings(config_dir, user_settings)
    full_env = dict(os.environ,
                    JUPYTER_CONFIG_DIR=str(config_dir),      # user settings: see docstring
                    JUPYTER_DATA_DIR=str(tmp / "data"),      # user kernels: none
                    JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    full_env.pop("JUPYTER_CONFIG_PATH", None)
    full_env.pop("JUPYTER_PATH", None)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", *args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # CI containers run as root, where jupyter_server refuses to start without it
        cmd.append("--allow-root")
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=full_env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, proc, log, config_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`jupyter lab` exited with status {proc.returncode} before "
                            f"serving:\n{server.log_tail()}")
            try:
                server.request("GET", "/api/status")
                break
            except (OSError, AssertionError):  # not listening yet, or still starting
                if time.monotonic() > deadline:
                    pytest.fail(f"`jupyter lab` did not answer on {server.url} within "
                                f"{START_TIMEOUT_S} s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        # SIGTERM: jupyter_server shuts its kernels down before it exits
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
