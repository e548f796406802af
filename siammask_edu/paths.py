"""Where data lives: one function finds the dataset root, nothing else hard-codes a path.

Resolution order of :func:`data_root`:

1. the ``root`` argument;
2. the environment variable ``SIAMMASK_EDU_DATA``;
3. a folder ``shared/data`` beside the checkout (``<checkout>/../shared/data``), looked for
   from the current directory upwards and from the installed package upwards.

The root holds ``davis2016/``, ``coco128/`` and ``vot/`` in their official layouts (see the
README's "Data" section for downloading them).

See book/01_siamese_tracking.py.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SIAMMASK_EDU_DATA"


def _candidates() -> list[Path]:
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    out = []
    for start in starts:
        for d in [start, *start.parents]:
            out.append(d / "shared" / "data")
    return out


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset root folder.

    Args:
        root: an explicit folder; wins over everything else.

    Returns:
        The folder, as an absolute :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: if the explicit root or ``$SIAMMASK_EDU_DATA`` does not exist,
            or if no root can be found (the message says how to set one).
    """
    if root is not None:
        p = Path(root).expanduser().resolve()
        if not p.is_dir():
            raise FileNotFoundError(f"data root {p} does not exist")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser().resolve()
        if not p.is_dir():
            raise FileNotFoundError(f"${ENV_VAR} points to {p}, which does not exist")
        return p
    for cand in _candidates():
        if cand.is_dir():
            return cand
    raise FileNotFoundError(
        f"no dataset root found: pass root=..., set ${ENV_VAR}, or place the data in "
        "'shared/data' beside the checkout (see README, section Data)"
    )


def davis_sequence(name: str, resolution: str = "480p", root=None) -> tuple[Path, Path]:
    """Frame and annotation folders of a DAVIS sequence.

    Returns:
        ``(JPEGImages/<res>/<name>, Annotations/<res>/<name>)`` under ``<root>/davis2016``.

    Raises:
        FileNotFoundError: naming the missing folder.
    """
    base = data_root(root) / "davis2016"
    frames = base / "JPEGImages" / resolution / name
    annos = base / "Annotations" / resolution / name
    for p in (frames, annos):
        if not p.is_dir():
            raise FileNotFoundError(f"DAVIS folder {p} does not exist")
    return frames, annos


def vot_sequence(name: str, root=None) -> Path:
    """Folder of a VOT sequence (``color/``, ``groundtruth.txt``) under ``<root>/vot``.

    Raises:
        FileNotFoundError: naming the missing folder.
    """
    p = data_root(root) / "vot" / name
    if not p.is_dir():
        raise FileNotFoundError(f"VOT sequence folder {p} does not exist")
    return p


def reference_root(root=None) -> Path:
    """Fixtures of the released implementation: ``$SIAMMASK_EDU_REFERENCE``, else the
    ``reference`` folder beside the data root (``shared/reference``).

    Raises:
        FileNotFoundError: if it is absent.
    """
    env = os.environ.get("SIAMMASK_EDU_REFERENCE")
    p = Path(env).expanduser().resolve() if env else data_root(root).parent / "reference"
    if not p.is_dir():
        raise FileNotFoundError(f"reference folder {p} does not exist")
    return p
