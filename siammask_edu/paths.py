"""Where data lives: one function finds the dataset root, nothing else hard-codes a path.

Resolution order of :func:`data_root`:

1. the ``root`` argument;
2. the environment variable ``SIAMMASK_EDU_DATA``;
3. a folder ``shared/data`` beside the checkout (``<checkout>/../shared/data``), looked for
   from the current directory upwards and from the installed package upwards.

The root holds ``davis2016/``, ``coco128/`` and ``vot/`` in their official layouts (see the
README's "Data" section for downloading them).

An explicit location (``root=`` or the environment variable) that exists but is empty is
not an error: it means "no data here", and :func:`have_davis`, :func:`have_vot` and
:func:`have_fixtures` answer ``False`` (a learner's checkout, or CI's learner-mode run of the
book, which points both variables at empty folders).

See book/01_siamese_tracking.py.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SIAMMASK_EDU_DATA"
REFERENCE_ENV_VAR = "SIAMMASK_EDU_REFERENCE"


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
    env = os.environ.get(REFERENCE_ENV_VAR)
    if env:
        p = Path(env).expanduser().resolve()
    else:
        try:
            p = data_root(root).parent / "reference"
        except FileNotFoundError:  # no data root: say where the *fixtures* are looked for
            raise FileNotFoundError(
                f"no reference folder: set ${REFERENCE_ENV_VAR}, or place it at "
                "'shared/reference' beside the checkout (the released implementation's "
                "recorded outputs; not distributed: see README, section Data)") from None
    if not p.is_dir():
        raise FileNotFoundError(f"reference folder {p} does not exist")
    return p


# -- what is here: the book and the tests ask before they read ---------------------------


def have_davis(*sequences: str, resolution: str = "480p", root=None) -> bool:
    """Whether DAVIS-2016 frames and annotations of every named sequence are in the data root.

    Never raises: no data root at all (a fresh clone without ``../shared``) is ``False``.
    With no names, asks for the three val sequences the book uses (``blackswan``,
    ``car-shadow``, ``dog``).
    """
    names = sequences or ("blackswan", "car-shadow", "dog")
    try:
        for name in names:
            davis_sequence(name, resolution, root)
    except FileNotFoundError:
        return False
    return True


def have_vot(*sequences: str, root=None) -> bool:
    """Whether every named VOT sequence (``color/``, ``groundtruth.txt``) is in the data root.

    Never raises. With no names, asks for ``bag`` and ``book``, the two the book uses.
    """
    names = sequences or ("bag", "book")
    try:
        return all((vot_sequence(n, root) / "groundtruth.txt").is_file() for n in names)
    except FileNotFoundError:
        return False


def fixtures_dir(root=None) -> Path:
    """``reference_root() / "fixtures"``: the released implementation's recorded outputs.

    Raises:
        FileNotFoundError: naming the folder looked for, if it is absent.
    """
    d = reference_root(root) / "fixtures"
    if not d.is_dir():
        raise FileNotFoundError(f"released-implementation fixtures folder {d} does not exist")
    return d


def have_fixtures(*names: str, root=None) -> bool:
    """Whether the reference fixtures are here (and each named file in them). Never raises."""
    try:
        d = fixtures_dir(root)
    except FileNotFoundError:
        return False
    return all((d / n).exists() for n in names)
