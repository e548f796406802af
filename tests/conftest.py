"""Shared test set-up: deterministic seeds, 2 torch threads, headless matplotlib, and the
fixtures of the released implementation.

Without data or fixtures (a clone without ``../shared``) the tests that need them skip, each
with its reason (``-rs`` prints them), through ``siammask_edu.testing.skip_missing_data``;
``SIAMMASK_EDU_REQUIRE_DATA=1`` (set by ``.ci/run``) makes each of those a failure."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest
import torch

from siammask_edu.paths import fixtures_dir as _fixtures_dir
from siammask_edu.paths import reference_root
from siammask_edu.testing import REQUIRE_DATA_ENV, data_required, skip_missing_data

torch.set_num_threads(2)


def opencv_pair_line() -> str:
    """The OpenCV pair that decides whether the replay tests are exact or bounded."""
    import json

    import cv2

    try:
        track = next((reference_root() / "fixtures").glob("track_*.npz"))
    except (FileNotFoundError, StopIteration):
        return f"opencv {cv2.__version__}; released-implementation fixtures not available"
    with np.load(track) as z:
        recorded = json.loads(str(z["meta"]))["cv2"]
    same = cv2.__version__.split("-")[0] == recorded
    return (f"opencv {cv2.__version__}; fixtures recorded with opencv {recorded}: post-processing "
            f"replay masks/polygons {'exact' if same else 'within a measured bound'}")


def data_line() -> str:
    """Whether missing data skips (a learner's clone) or fails (CI)."""
    if data_required():
        return f"${REQUIRE_DATA_ENV}=1: a test whose data or fixtures are missing fails"
    return (f"missing data or fixtures skip their tests (reasons: -rs); "
            f"${REQUIRE_DATA_ENV}=1 makes them fail")


def pytest_report_header(config):
    return [opencv_pair_line(), data_line()]


def pytest_terminal_summary(terminalreporter):
    # also under -q, where the header is not shown
    terminalreporter.write_line(opencv_pair_line())
    terminalreporter.write_line(data_line())


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # The released fixtures were recorded with 2 threads; oneDNN's reduction order depends
    # on the thread count, so every test starts at 2 whatever an earlier test set.
    torch.set_num_threads(2)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def fixtures_dir():
    """``shared/reference/fixtures`` (outputs of the released SiamMask on a seeded checkpoint)."""
    try:
        return _fixtures_dir()
    except FileNotFoundError as exc:
        skip_missing_data(f"released-implementation fixtures not available: {exc}")


@pytest.fixture(scope="session")
def seeded_checkpoint(fixtures_dir):
    return fixtures_dir / "siammask_sharp_seed1.f16.pth"


@pytest.fixture(scope="session")
def seeded_sharp(seeded_checkpoint):
    """The released sharp network with the seeded weights (eval mode, fp32)."""
    from siammask_edu import load_released_checkpoint

    return load_released_checkpoint(seeded_checkpoint)


@pytest.fixture(scope="session")
def raw_outputs(fixtures_dir):
    return np.load(fixtures_dir / "raw_outputs.npz")
