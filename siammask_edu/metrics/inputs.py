"""Checks of an evaluation's inputs: frames paired with their ground truth by identity (file
name, frame number), and every problem found reported at once, grouped by kind.

* :func:`pair_by_name` pairs DAVIS frames ``JPEGImages/<seq>/00007.jpg`` with annotations
  ``Annotations/<seq>/00007.png`` by file stem;
* :func:`pair_by_number` pairs VOT frames ``color/00000007.jpg`` with line 7 of
  ``groundtruth.txt`` by the number in the file name;
* :class:`Problems` collects ``(kind, file, detail)`` entries and raises one
  :class:`InputProblemsError` naming all of them (consecutive frames with the same
  detail are written as one range).

See book/10_measuring.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Kinds in the order an error message lists them.
KINDS = ("missing", "extra", "wrong size", "wrong mode", "wrong length", "unreadable",
         "unnumbered", "duplicate")


class InputProblemsError(FileNotFoundError, ValueError):
    """Every problem with an evaluation's inputs, grouped by kind, in one error.

    A :class:`FileNotFoundError` (files are missing) and a :class:`ValueError` (files are
    wrong) at once, so either ``except`` catches it. ``problems`` holds the
    :class:`Problems` it was raised from.

    See book/10_measuring.py.
    """

    def __init__(self, message: str, problems: Problems | None = None):
        super().__init__(message)
        self.problems = problems


def _run_key(name: str):
    """``(prefix, number, width, suffix)`` of a name with one trailing digit run, else None."""
    m = re.fullmatch(r"(.*?)(\d+)(\.[^./]*)?", name)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), len(m.group(2)), m.group(3) or ""


def _compress(names: list[str]) -> list[str]:
    """Runs of 3+ consecutive numbered names as ``first … last (n frames)``."""
    out, i = [], 0
    while i < len(names):
        k0, j = _run_key(names[i]), i + 1
        if k0 is not None:
            while j < len(names):
                k = _run_key(names[j])
                if k is None or (k[0], k[2], k[3]) != (k0[0], k0[2], k0[3]) or \
                        k[1] != k0[1] + (j - i):
                    break
                j += 1
        if j - i >= 3:
            out.append(f"{names[i]} … {Path(names[j - 1]).name} ({j - i} frames)")
        else:
            out.extend(names[i:j])
        i = j
    return out


class Problems:
    """A collector of input problems: ``add(kind, folder, name, detail)``, then
    :meth:`raise_if_any`.

    ``folder`` (e.g. ``"seqa/"``) and ``name`` (e.g. ``"00002.png"``) form the file shown;
    entries of one kind, folder and detail whose names are consecutive frame numbers are
    shown as one range, but each counts as one problem.

    See book/10_measuring.py.
    """

    def __init__(self) -> None:
        self.entries: dict[str, list[tuple[str, str, str]]] = {}

    def add(self, kind: str, folder: str, name: str = "", detail: str = "") -> None:
        self.entries.setdefault(kind, []).append((folder, name, detail))

    def __len__(self) -> int:
        return sum(len(v) for v in self.entries.values())

    def __bool__(self) -> bool:
        return len(self) > 0

    def kinds(self) -> list[str]:
        return sorted(self.entries, key=lambda k: (KINDS.index(k) if k in KINDS else len(KINDS),
                                                   k))

    def describe(self, kind: str) -> str:
        """``"<n> <kind>: item, item, …"`` with runs of frames compressed."""
        groups: dict[tuple[str, str], list[str]] = {}
        for folder, name, detail in self.entries[kind]:
            groups.setdefault((folder, detail), []).append(name)
        items = []
        for (folder, detail), names in groups.items():
            files = ", ".join(f"{folder}{shown}" for shown in _compress(names))
            items.append(files + (f": {detail}" if detail else ""))
        return f"{len(self.entries[kind])} {kind}: " + ", ".join(items)

    def message(self, what: str) -> str:
        n = len(self)
        return (f"{what} ({n} problem{'s' if n != 1 else ''}): "
                + "; ".join(self.describe(k) for k in self.kinds()))

    def raise_if_any(self, what: str) -> None:
        """Raise :class:`InputProblemsError` listing every problem, if there is one.

        Args:
            what: the opening of the message, e.g. ``"results in R do not match the ground
                truth"``.
        """
        if self:
            raise InputProblemsError(self.message(what), self)


def pair_by_name(frames: list[Path], annotations: list[Path], folder: str = "",
                 problems: Problems | None = None) -> list[tuple[Path, Path]]:
    """Pair frames and annotations of equal file stem (DAVIS: ``00007.jpg`` with ``00007.png``).

    Args:
        frames: image files of one sequence; annotations: its mask files.
        folder: shown before file names in problems (e.g. ``"blackswan/"``).
        problems: collects an annotation without a frame (``missing``: the frame it needs)
            and a frame without an annotation (``extra``); a new collector if None, which
            is raised at once.

    Returns:
        ``[(frame, annotation)]`` in the annotations' natural order (only paired ones).

    See book/10_measuring.py.
    """
    own = problems is None
    problems = Problems() if own else problems
    by_stem = {}
    for f in frames:
        if f.stem in by_stem:
            problems.add("duplicate", folder, f.name, f"a second image of frame {f.stem}")
        else:
            by_stem[f.stem] = f
    ext = frames[0].suffix if frames else ".jpg"
    stems = {a.stem for a in annotations}
    pairs = []
    for a in sorted(annotations, key=lambda p: _natural(p.stem)):
        if a.stem in by_stem:
            pairs.append((by_stem[a.stem], a))
        else:
            problems.add("missing", folder, a.stem + ext, "an annotation without its frame")
    for stem in sorted(set(by_stem) - stems, key=_natural):
        problems.add("extra", folder, by_stem[stem].name, "a frame without an annotation")
    if own:
        problems.raise_if_any("frames do not pair with their annotations")
    return pairs


def _natural(s: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def frame_number(path: str | os.PathLike) -> int | None:
    """The frame number of a VOT image name (``00000007.jpg`` -> 7), None if not numbered.

    See book/10_measuring.py.
    """
    m = re.search(r"(\d+)$", Path(path).stem)
    return int(m.group(1)) if m else None


def pair_by_number(frames: list[Path], n_groundtruth: int, folder: str = "",
                   problems: Problems | None = None) -> list[Path]:
    """The frames of ground-truth lines ``1..n`` by the number in their names (VOT).

    Line ``i`` (1-based) of ``groundtruth.txt`` belongs to the image numbered ``i`` (the
    toolkit's ``color/%08d.jpg`` from 1); a folder holding an image numbered 0 is taken as
    numbered from 0.

    Args:
        frames: the sequence's image files.
        n_groundtruth: the number of ground-truth regions.
        folder: shown before file names in problems (e.g. ``"bag/color/"``).
        problems: collects images without a number (``unnumbered``), two images of one
            number (``duplicate``), numbers the ground truth has and the folder lacks
            (``missing``, named as the folder's other images are) and images past the
            ground truth (``extra``); a new collector if None, raised at once.

    Returns:
        One path per ground-truth line, in order (shorter if frames are missing).

    See book/10_measuring.py.
    """
    own = problems is None
    problems = Problems() if own else problems
    numbered: dict[int, Path] = {}
    for f in frames:
        k = frame_number(f)
        if k is None:
            problems.add("unnumbered", folder, f.name, "no frame number in the name")
        elif k in numbered:
            problems.add("duplicate", folder, f.name, f"a second image of frame {k}")
        else:
            numbered[k] = f
    base = 0 if 0 in numbered else 1
    if numbered:
        sample = numbered[min(numbered)]
        digits = re.search(r"(\d+)$", sample.stem).group(1)
        width = len(digits) if digits.startswith("0") else 1
        prefix, ext = sample.stem[: len(sample.stem) - len(digits)], sample.suffix
    else:
        width, prefix, ext = 8, "", ".jpg"
    out = []
    for k in range(base, base + n_groundtruth):
        if k in numbered:
            out.append(numbered[k])
        else:
            problems.add("missing", folder, f"{prefix}{k:0{width}d}{ext}",
                         "a ground-truth line without its frame")
    for k in sorted(numbered):
        if not base <= k < base + n_groundtruth:
            problems.add("extra", folder, numbered[k].name,
                         f"the ground truth has {n_groundtruth} lines")
    if own:
        problems.raise_if_any("frames do not pair with the ground truth")
    return out
