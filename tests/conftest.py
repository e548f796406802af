"""Shared test set-up: deterministic seeds, 2 torch threads, headless matplotlib, and the
fixtures of the released implementation (skipped with a reason where absent)."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest
import torch

from siammask_edu.paths import reference_root

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


def pytest_report_header(config):
    return opencv_pair_line()


def pytest_terminal_summary(terminalreporter):
    # also under -q, where the header is not shown
    terminalreporter.write_line(opencv_pair_line())


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
        d = reference_root() / "fixtures"
    except FileNotFoundError as exc:
        pytest.skip(f"released-implementation fixtures not available: {exc}")
    if not d.is_dir():
        pytest.skip(f"released-implementation fixtures not available at {d}")
    return d


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
