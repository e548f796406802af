"""Get the datasets: download the official archives and build the project's layout.

``siammask-edu data get NAME [--root DIR]`` (:func:`get_dataset`) downloads the official
archives of a dataset from their official URLs, extracts them and writes the layout that
:func:`siammask_edu.data_root` users read (README, section Data)::

    ROOT/davis2016/JPEGImages/480p/<seq>/00000.jpg    DAVIS-2016, train + val, 480p
    ROOT/davis2016/Annotations/480p/<seq>/00000.png   0/255 masks
    ROOT/davis2016/ImageSets/2016/{train,val}.txt     one sequence name a line
    ROOT/davis2016/{JPEGImages,Annotations}/240p/<seq> train sequences at 427x240 (davis_240p)
    ROOT/davis2017/...                                DAVIS-2017 trainval 480p, as released
    ROOT/coco128/images/<split>/*.jpg, annotations/instances.json  (coco_subset)
    ROOT/vot/<seq>/color/%08d.jpg, groundtruth.txt, *.tag; ROOT/vot/list.txt

Datasets (:data:`DATASETS`; ``siammask-edu data list``):

* ``davis2016``: ``DAVIS-data.zip`` (480p and 1080p; only 480p is extracted). The archive's
  ``ImageSets/480p/{train,val}.txt`` (lines ``/JPEGImages/480p/bear/00000.jpg
  /Annotations/480p/bear/00000.png``) become ``ImageSets/2016/{train,val}.txt`` (bare
  names, the DAVIS-2017 convention that :mod:`siammask_edu.metrics.davis` reads); then
  :func:`davis_240p` writes the 240p train copies that ``configs/train_lite.json`` trains on.
* ``davis2017``: ``DAVIS-2017-trainval-480p.zip``, its ``DAVIS/`` folder as released
  (multi-object annotations; ``ImageSets/2016`` and ``ImageSets/2017``).
* ``coco128``: the project's class-agnostic COCO-2017 subset (:func:`coco_subset`), from
  ``annotations_trainval2017.zip`` and the 200 chosen images, fetched one by one from their
  official ``coco_url`` (``images.cocodataset.org/<split>/<file>``) unless the image
  archives ``train2017.zip`` / ``val2017.zip`` are given with ``--archive`` (then read from
  them, nothing downloaded).
* ``vot2016``, ``vot2018``: the sequences listed by the VOT toolkit's ``description.json``
  of that challenge (each sequence: an annotations zip and a ``color`` zip, URLs relative
  to the description, as ``vot.dataset.common.download_dataset_meta`` reads them); all of
  them, or those of ``sequences=``. Existing ``ROOT/vot/<seq>`` folders are kept (VOT2016
  and VOT2018 share sequence names: the first one fetched stays).

Checks: an archive's SHA-256 is checked where :class:`Archive` records one. **None of the
official archives publishes one** and none is invented here, so ``sha256`` is ``None``
throughout the registry: what is checked then is the length the server announced
(``Content-Length``), that the file is a readable zip, and the extracted layout. The SHA-256
of every archive used is written to ``<dataset>/SOURCE.json`` (and can be pinned in a
registry entry of one's own, see :func:`get_dataset`).

Downloading uses `pooch <https://www.fatiando.org/pooch/>`_ (``pooch.retrieve``: the cache
folder, the hash check, the temporary file moved into place only when complete and
matching) with one addition, :class:`ResumableHTTPDownloader`: pooch's own HTTP downloader
always starts from byte 0, so an interrupted 2 GB download would restart; this one keeps
the bytes in ``<cache>/<file>.part`` and asks the server for the rest (HTTP ``Range`` with
``If-Range``, so a file that changed on the server is sent whole instead of being spliced).
Progress bars are tqdm's. Archives stay in the cache (default ``ROOT/.downloads``) so that
a rebuild does not download again; delete it to free the space.

Atomicity: a dataset is built in a hidden folder beside its target
(``ROOT/.<folder>.partial-XXXX``), checked, and renamed onto ``ROOT/<folder>`` as the last
step (a VOT sequence: ``ROOT/.vot-<seq>.partial-XXXX`` onto ``ROOT/vot/<seq>``, then
``vot/list.txt`` rewritten atomically); on any failure (``KeyboardInterrupt`` included)
the hidden folder is removed. A folder under its final name is therefore always complete;
an existing one is never overwritten (:class:`FileExistsError`: remove it to rebuild). A
process killed outright (``SIGKILL``, power loss) can leave a hidden ``.partial-`` folder,
which nothing reads: delete it.

Errors (all one line, naming the URL or path): :class:`DownloadError` (an ``OSError``)
when the server cannot be reached -- at once, with the URL and the manual steps (download
by hand, then ``--archive PATH``) -- when a download is interrupted (run again: it resumes),
when the root is not writable, or when the disk is full (``errno.ENOSPC``); ``ValueError``
for an unknown dataset (the known ones listed), a hash mismatch (the file is removed), an
archive that is not a zip or has the wrong layout (what was expected is named).

Offline tests point a dataset at a local server with ``mirror=`` (``--mirror URL``, or the
environment variable ``SIAMMASK_EDU_DATA_MIRROR``): the part of an official URL after the
dataset's ``base_url`` is appended to the mirror.

See README.md, section Data.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pooch

MIRROR_ENV = "SIAMMASK_EDU_DATA_MIRROR"
SIZE_240P = (427, 240)  # (width, height) of 854x480 halved, as DAVIS's own 240p would be
CONNECT_TIMEOUT_S = 10.0  # offline: fail after at most this (DNS failures fail at once)
READ_TIMEOUT_S = 60.0


class DownloadError(OSError):
    """A download, or a write, that could not start or finish.

    ``errno`` is ``ENOSPC`` for a full disk and ``EACCES`` for a root that is not writable
    (``None`` otherwise); ``str()`` is the message alone, one line.
    """

    def __str__(self) -> str:
        return self.strerror if self.strerror else super().__str__()


@dataclass(frozen=True)
class Archive:
    """One file of a dataset, at its official URL.

    Attributes:
        url: the official URL.
        sha256: hex digest to check, or ``None``: no checksum is published (nothing is
            invented; the length and the layout are checked instead).
        approx_size: a human size for ``data list`` (not checked), or ``"unknown"``.
        required: ``False`` for an archive used only when given with ``--archive``
            (COCO's image zips: otherwise the few images needed are fetched one by one).
    """

    url: str
    sha256: str | None = None
    approx_size: str = "unknown"
    required: bool = True

    @property
    def name(self) -> str:
        """The file name (last part of the URL)."""
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the registry (:data:`DATASETS`).

    Attributes:
        name: what ``data get`` takes.
        folder: the folder written under the root (``vot`` for the VOT datasets).
        kind: the builder: ``"davis2016"``, ``"davis2017"``, ``"coco"`` or ``"vot"``.
        title, homepage, licence: for ``data list``.
        base_url: the official prefix that a mirror replaces.
        archives: the files (VOT: its ``description.json``).
    """

    name: str
    folder: str
    kind: str
    title: str
    homepage: str
    licence: str
    base_url: str
    archives: tuple[Archive, ...]


_DAVIS16 = "https://graphics.ethz.ch/Downloads/Data/Davis/"
_DAVIS17 = "https://data.vision.ee.ethz.ch/csergi/share/davis/"
_COCO = "http://images.cocodataset.org/"

DATASETS: dict[str, DatasetSpec] = {
    "davis2016": DatasetSpec(
        "davis2016", "davis2016", "davis2016",
        "DAVIS-2016: 480p train+val, ImageSets/2016, 240p train copies",
        "https://davischallenge.org/davis2016/code.html",
        "CC BY-NC 4.0 (some clips under YouTube terms)", _DAVIS16,
        (Archive(_DAVIS16 + "DAVIS-data.zip", approx_size="about 1.9 GB (480p + 1080p)"),)),
    "davis2017": DatasetSpec(
        "davis2017", "davis2017", "davis2017",
        "DAVIS-2017 trainval 480p (multi-object)",
        "https://davischallenge.org/davis2017/code.html",
        "CC BY-NC 4.0 (some clips under their own terms: SOURCES.md)", _DAVIS17,
        (Archive(_DAVIS17 + "DAVIS-2017-trainval-480p.zip"),)),
    "coco128": DatasetSpec(
        "coco128", "coco128", "coco",
        "class-agnostic COCO-2017 subset (first 100 train2017 + 100 val2017 images)",
        "https://cocodataset.org/#download",
        "annotations CC BY 4.0; images under their Flickr licences", _COCO,
        (Archive(_COCO + "annotations/annotations_trainval2017.zip", approx_size="about 241 MB"),
         Archive(_COCO + "zips/train2017.zip", approx_size="about 18 GB", required=False),
         Archive(_COCO + "zips/val2017.zip", approx_size="about 1 GB", required=False))),
    "vot2016": DatasetSpec(
        "vot2016", "vot", "vot", "VOT2016 short-term sequences (VOT toolkit list)",
        "https://www.votchallenge.net/vot2016/dataset.html", "free for research use",
        "https://data.votchallenge.net/vot2016/main/",
        (Archive("https://data.votchallenge.net/vot2016/main/description.json"),)),
    "vot2018": DatasetSpec(
        "vot2018", "vot", "vot", "VOT2018 short-term sequences (VOT toolkit list)",
        "https://www.votchallenge.net/vot2018/dataset.html", "free for research use",
        "http://data.votchallenge.net/vot2018/main/",
        (Archive("http://data.votchallenge.net/vot2018/main/description.json"),)),
}


def known_datasets() -> list[str]:
    """Names ``data get`` accepts, in registry order."""
    return list(DATASETS)


def dataset_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The registry entry of ``name`` (a :class:`DatasetSpec` is returned as is).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if isinstance(name, DatasetSpec):
        return name
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


# -- manual steps (the offline message) ------------------------------------------------------


def manual_steps(spec: DatasetSpec, root: Path) -> str:
    """One sentence: how to get ``spec`` without this command's downloads."""
    if spec.kind == "vot":
        return (f"get the sequences with the VOT toolkit on a machine with internet "
                f"(pip install vot-toolkit; vot initialize {spec.name} --workspace W) and copy "
                f"W/sequences/<seq>/ to {root / 'vot'}/<seq>/ (color/, groundtruth.txt)")
    names = [a for a in spec.archives if a.required]
    urls = " and ".join(a.url for a in names)
    extra = ""
    if spec.kind == "coco":
        extra = (" (add --archive train2017.zip --archive val2017.zip from "
                 f"{_COCO}zips/ to read the images from them instead of fetching them)")
    args = " ".join(f"--archive PATH/{a.name}" for a in names)
    return (f"download {urls} by hand (browser, or wget -c URL), then run: "
            f"siammask-edu data get {spec.name} --root {root} {args}{extra}")


# -- downloading -----------------------------------------------------------------------------


def _free_bytes(path: Path) -> int:
    """Free bytes on the device of ``path`` (patched by the tests)."""
    return shutil.disk_usage(path).free


def _check_space(folder: Path, need: int | None, what: str) -> None:
    if not need:
        return
    free = _free_bytes(folder)
    if free < need:
        raise DownloadError(errno.ENOSPC, f"not enough space in {folder} for {what}: needs "
                            f"{need / 1e6:.1f} MB, {free / 1e6:.1f} MB free; free space or "
                            "choose another --root / --cache")


def _is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests exception, short."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    msg = " ".join(str(exc).split())
    return (msg[:160] + "...") if len(msg) > 160 else msg or type(exc).__name__


class ResumableHTTPDownloader(pooch.HTTPDownloader):
    """A pooch downloader that resumes interrupted downloads.

    The bytes go to ``part`` (``<cache>/<file>.part``, kept when the download stops), and the
    server's validator (``ETag``, else ``Last-Modified``) to ``part + ".json"``. A later call
    asks for the rest with ``Range: bytes=N-`` and ``If-Range: <validator>``: a ``206``
    answer is appended, a ``200`` (the file changed, or the server ignores ranges) restarts
    from byte 0. The complete file is then moved onto pooch's temporary ``output_file``,
    which pooch checks against the known hash (and deletes on a mismatch) before moving it
    into the cache. ``Accept-Encoding: identity`` keeps byte counts equal to file bytes.

    Args:
        part: the partial file.
        manual: the manual steps, appended to the error when the server cannot be reached.
        progressbar: show a tqdm bar (on stderr).
        chunk_size: bytes per write.
        timeout: ``(connect, read)`` seconds.

    Raises (from ``__call__``):
        DownloadError: the server cannot be reached or answers an HTTP error (the URL and
            ``manual`` in the message); the download stops early (the ``.part`` file is kept
            and the message says to run again); the disk is full (``errno.ENOSPC``).
    """

    def __init__(self, part: str | os.PathLike, manual: str = "", progressbar: bool = False,
                 chunk_size: int = 1 << 20,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)):
        super().__init__(progressbar=progressbar, chunk_size=chunk_size, timeout=timeout)
        self.part = Path(part)
        self.meta = self.part.with_name(self.part.name + ".json")
        self.manual = manual
        self.timeout = timeout

    def _validator(self, have: int) -> str | None:
        if not have or not self.meta.is_file():
            return None
        try:
            return json.loads(self.meta.read_text()).get("validator")
        except (OSError, ValueError):
            return None

    def __call__(self, url, output_file, pooch_obj, check_only=False):
        import requests
        import urllib3
        from tqdm import tqdm

        if check_only:
            return super().__call__(url, output_file, pooch_obj, check_only=True)
        have = self.part.stat().st_size if self.part.is_file() else 0
        validator = self._validator(have)
        headers = {"Accept-Encoding": "identity"}
        if validator:  # resume only what can be validated: a changed file is sent whole
            headers.update({"Range": f"bytes={have}-", "If-Range": validator})
        try:
            resp = requests.get(url, headers=headers, stream=True, timeout=self.timeout,
                                allow_redirects=True)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DownloadError(f"cannot reach {url} ({_reason(exc)}): offline? "
                                f"{self.manual}") from None
        with resp:
            if resp.status_code == 416 and have:  # range past the end: start again
                self.part.unlink(missing_ok=True)
                self.meta.unlink(missing_ok=True)
                return self(url, output_file, pooch_obj)
            if resp.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}; "
                                    f"{self.manual}")
            crange = resp.headers.get("Content-Range", "")
            resumed = bool(validator) and resp.status_code == 206 \
                and crange.startswith(f"bytes {have}-")
            length = resp.headers.get("Content-Length")
            if resumed:
                total = int(crange.rsplit("/", 1)[1]) if crange.rsplit("/", 1)[1].isdigit() \
                    else None
            else:
                have = 0
                total = int(length) if length and length.isdigit() else None
                new_validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
                self.part.parent.mkdir(parents=True, exist_ok=True)
                self.meta.write_text(json.dumps({"url": url, "validator": new_validator,
                                                 "total": total}))
            _check_space(self.part.parent, None if total is None else total - have,
                         f"downloading {url}")
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=self.part.name[:-len(".part")][:30],
                       disable=not self.progressbar, file=sys.stderr, leave=True)
            try:
                with open(self.part, "ab" if resumed else "wb") as fh:
                    # read1: what has arrived (<= chunk_size), so that bytes received before
                    # the connection drops reach the .part file (read(n) would drop them)
                    while chunk := resp.raw.read1(self.chunk_size, decode_content=False):
                        fh.write(chunk)
                        bar.update(len(chunk))
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                got = self.part.stat().st_size if self.part.is_file() else 0
                raise DownloadError(
                    f"download of {url} interrupted after {got} of {total or '?'} bytes "
                    f"({_reason(exc)}); the partial file {self.part} is kept: run the same "
                    "command again to resume") from None
            except OSError as exc:
                if _is_enospc(exc):
                    raise DownloadError(errno.ENOSPC, f"no space left in {self.part.parent} "
                                        f"while downloading {url}; free space (the partial "
                                        f"file {self.part} is kept: run again to resume) or "
                                        "choose another --root / --cache") from None
                raise
            finally:
                bar.close()
        got = self.part.stat().st_size
        if total is not None and got != total:
            raise DownloadError(f"download of {url} stopped at {got} of {total} bytes; the "
                                f"partial file {self.part} is kept: run the same command "
                                "again to resume")
        os.replace(self.part, output_file)
        self.meta.unlink(missing_ok=True)
        return None


@contextlib.contextmanager
def _quiet_pooch():
    """pooch logs 'Downloading ...' and a hint to pin the hash: the CLI prints its own."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def mirrored(url: str, base_url: str, mirror: str | None) -> str:
    """``url`` with its official prefix ``base_url`` replaced by ``mirror`` (if any)."""
    if mirror and url.startswith(base_url):
        return mirror.rstrip("/") + "/" + url[len(base_url):]
    return url


def fetch(url: str, cache: Path, fname: str, sha256: str | None = None, manual: str = "",
          progress: bool = True) -> Path:
    """Download ``url`` into ``cache/fname`` (or reuse it there): pooch + resume.

    Args:
        url: what to download.
        cache: the cache folder (created).
        fname: the file name in it.
        sha256: expected digest, or ``None`` (no check; a cached file is then reused as is).
        manual: the manual steps for the offline message.
        progress: tqdm bar.

    Returns:
        The file in the cache.

    Raises:
        DownloadError: see :class:`ResumableHTTPDownloader`.
        ValueError: the SHA-256 does not match (the downloaded file has been removed).
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    dl = ResumableHTTPDownloader(cache / (fname + ".part"), manual=manual,
                                 progressbar=progress)
    try:
        with _quiet_pooch():
            out = pooch.retrieve(url, known_hash=f"sha256:{sha256}" if sha256 else None,
                                 fname=fname, path=cache, downloader=dl, progressbar=progress)
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise ValueError(f"{url}: the downloaded file's SHA-256 does not match the expected "
                         f"{sha256} (corrupted download or changed file); it was removed, "
                         "run again to download it afresh") from None
    except OSError as exc:
        if _is_enospc(exc) and not isinstance(exc, DownloadError):
            raise DownloadError(errno.ENOSPC, f"no space left in {cache} while downloading "
                                f"{url}; free space or choose another --cache") from None
        raise
    return Path(out)


def check_archive(path: Path, sha256: str | None = None) -> Path:
    """An archive given with ``--archive``: it exists, matches ``sha256`` (if known), is a zip.

    Raises:
        FileNotFoundError: it does not exist.
        ValueError: a hash mismatch, or not a zip archive.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"archive {path} does not exist")
    if sha256:
        got = pooch.file_hash(str(path))
        if got != sha256:
            raise ValueError(f"archive {path}: SHA-256 {got} does not match the expected "
                             f"{sha256}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"archive {path} is not a zip archive (a truncated download, or an "
                         "HTML page saved instead?)")
    return path


# -- extracting ------------------------------------------------------------------------------


def extract_zip(archive: Path, dest: Path, keep: Callable[[str], bool] | None = None,
                progress: bool = False) -> int:
    """Extract the members of ``archive`` for which ``keep(name)`` into ``dest``.

    ``__MACOSX/`` entries are skipped; a member with an absolute path or ``..`` is refused.

    Returns:
        The number of files extracted.

    Raises:
        ValueError: not a zip, a corrupt zip, or an unsafe member (the archive named).
        DownloadError: the disk filled up (``errno.ENOSPC``; ``dest`` named).
    """
    from tqdm import tqdm

    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{archive} is not a readable zip archive ({exc}); delete it and run "
                         "again") from None
    n = 0
    with zf:
        members = [m for m in zf.infolist() if not m.filename.startswith("__MACOSX/")
                   and (keep is None or keep(m.filename))]
        for m in members:
            parts = Path(m.filename).parts
            if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ValueError(f"{archive}: unsafe member path {m.filename!r}; not extracting")
        need = sum(m.file_size for m in members)
        dest.mkdir(parents=True, exist_ok=True)
        _check_space(dest, need, f"extracting {archive.name}")
        try:
            for m in tqdm(members, desc=f"extract {archive.name}"[:30], unit="file",
                          disable=not progress, file=sys.stderr):
                zf.extract(m, dest)
                n += not m.is_dir()
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{archive} is corrupt ({exc}); delete it and run again") from None
        except OSError as exc:
            if _is_enospc(exc):
                raise DownloadError(errno.ENOSPC, f"no space left in {dest} while extracting "
                                    f"{archive} (needs about {need / 1e6:.0f} MB); free space "
                                    "or choose another --root") from None
            raise
    return n


def _find_dataset_folder(top: Path, required: Sequence[str], archive: Path,
                         expected: str) -> Path:
    """The folder at most two levels below ``top`` that holds every path of ``required``."""
    cands = [top] + [d for d in sorted(top.iterdir()) if d.is_dir()]
    cands += [e for d in cands[1:] for e in sorted(d.iterdir()) if e.is_dir()]
    for c in cands:
        if all((c / r).is_dir() for r in required):
            return c
    found = sorted(p.name for p in top.iterdir())[:8]
    raise ValueError(f"{archive} does not have the expected layout: expected {expected}; "
                     f"its top level holds {found or 'nothing'}")


# -- the project's layout: DAVIS ----------------------------------------------------------------


def read_sequence_list(path: Path) -> list[str]:
    """Sequence names of a DAVIS list: lines ``/JPEGImages/480p/bear/00000.jpg
    /Annotations/480p/bear/00000.png`` (DAVIS-2016) or bare names (DAVIS-2017), in order,
    each once."""
    names = []
    for line in Path(path).read_text().splitlines():
        tok = line.split()[0].strip("/") if line.strip() else ""
        if tok:
            parts = tok.split("/")
            names.append(parts[-2] if len(parts) > 1 else parts[0])
    return list(dict.fromkeys(names))


def davis_train_sequences(davis: Path) -> list[str]:
    """Sequence names of ``ImageSets/2016/train.txt`` under the DAVIS-2016 root ``davis``.

    Raises:
        FileNotFoundError: the list is missing.
    """
    lst = Path(davis) / "ImageSets" / "2016" / "train.txt"
    if not lst.is_file():
        raise FileNotFoundError(f"{lst} not found: --davis must be the DAVIS-2016 root "
                                "(the folder holding JPEGImages/, Annotations/, ImageSets/)")
    return read_sequence_list(lst)


def _write_image(path: Path, img, params=()) -> None:
    import cv2

    if path.exists():
        raise FileExistsError(f"{path} exists: not overwriting")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), img, list(params)):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)


def davis_240p(davis: Path, out: Path, size: tuple[int, int] = SIZE_240P,
               progress: bool = False) -> dict:
    """Downscale the DAVIS-2016 train sequences of ``davis`` (480p) into ``out`` (240p).

    Every sequence of ``ImageSets/2016/train.txt``: frames resized with ``cv2.INTER_AREA``
    and written as JPEG quality 85, masks with ``cv2.INTER_NEAREST`` written as 0/255 PNGs
    (the recipe of the project's development data), under ``out/{JPEGImages,Annotations}/
    240p/<seq>/``. Validation sequences are not converted (evaluated at 480p, never trained
    on). ``ImageSets/2016/*.txt`` is copied so that ``out`` is a complete dataset root.
    ``davis`` and ``out`` may be the same folder.

    Returns:
        dict: ``sequences`` and ``frames`` converted.

    Raises:
        FileNotFoundError: a missing list, sequence folder, frame or mask (named).
        FileExistsError: an output file that exists already.
    """
    import cv2
    import numpy as np
    from tqdm import tqdm

    davis, out = Path(davis), Path(out)
    names = davis_train_sequences(davis)
    n = 0
    for name in tqdm(names, desc="240p", unit="seq", disable=not progress, file=sys.stderr):
        src_f = davis / "JPEGImages" / "480p" / name
        src_a = davis / "Annotations" / "480p" / name
        frames = sorted(src_f.glob("*.jpg"))
        if not frames:
            raise FileNotFoundError(f"no frames in {src_f}")
        for fp in frames:
            ap = src_a / (fp.stem + ".png")
            img = cv2.imread(str(fp), cv2.IMREAD_COLOR)
            mask = cv2.imread(str(ap), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FileNotFoundError(f"unreadable or missing frame {fp}")
            if mask is None:
                raise FileNotFoundError(f"unreadable or missing mask {ap}")
            small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
            _write_image(out / "JPEGImages" / "240p" / name / fp.name, small,
                         (cv2.IMWRITE_JPEG_QUALITY, 85))
            _write_image(out / "Annotations" / "240p" / name / ap.name,
                         np.where(small_mask > 0, 255, 0).astype(np.uint8))
            n += 1
    sets = out / "ImageSets" / "2016"
    sets.mkdir(parents=True, exist_ok=True)
    for f in (davis / "ImageSets" / "2016").glob("*.txt"):
        if not (sets / f.name).exists():
            shutil.copyfile(f, sets / f.name)
    return {"sequences": len(names), "frames": n}


def _check_davis_sequences(base: Path, names: Iterable[str], listing: str,
                            archive: Path) -> None:
    for seq in names:
        for kind, ext in (("JPEGImages", "*.jpg"), ("Annotations", "*.png")):
            d = base / kind / "480p" / seq
            if not any(d.glob(ext)):
                raise ValueError(f"{archive}: sequence {seq!r} of {listing} has no {ext[1:]} "
                                 f"files under {kind}/480p/{seq}/ (wrong or truncated archive)")


def build_davis2016(archive: Path, out: Path, work: Path, progress: bool = False) -> dict:
    """``DAVIS-data.zip`` -> the project's ``davis2016`` layout in ``out`` (see the module
    docstring); ``work`` is scratch space on the same device.

    Raises:
        ValueError: the archive does not hold ``JPEGImages/480p``, ``Annotations/480p`` and
            ``ImageSets/480p/{train,val}.txt`` (or ``ImageSets/2016/...``), or a listed
            sequence has no frames or masks.
    """
    expected = ("DAVIS/JPEGImages/480p/<seq>/*.jpg, DAVIS/Annotations/480p/<seq>/*.png and "
                "DAVIS/ImageSets/480p/{train,val}.txt (DAVIS-data.zip)")
    extract_zip(archive, work, keep=lambda n: "/1080p/" not in f"/{n}", progress=progress)
    src = _find_dataset_folder(work, ("JPEGImages/480p", "Annotations/480p"), archive, expected)
    lists = {}
    for split in ("train", "val"):
        lst = next((p for p in (src / "ImageSets" / "480p" / f"{split}.txt",
                                src / "ImageSets" / "2016" / f"{split}.txt") if p.is_file()),
                   None)
        if lst is None:
            raise ValueError(f"{archive} does not have the expected layout: no "
                             f"ImageSets/480p/{split}.txt; expected {expected}")
        lists[split] = read_sequence_list(lst)
        _check_davis_sequences(src, lists[split], f"ImageSets/480p/{split}.txt", archive)
    for kind in ("JPEGImages", "Annotations"):
        (out / kind).mkdir(parents=True, exist_ok=True)
        os.replace(src / kind / "480p", out / kind / "480p")
    sets = out / "ImageSets" / "2016"
    sets.mkdir(parents=True, exist_ok=True)
    for split, names in lists.items():
        (sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    for f in src.iterdir():  # README / licence files of the release
        if f.is_file():
            shutil.copyfile(f, out / f.name)
    r = davis_240p(out, out, progress=progress)
    return {"train": len(lists["train"]), "val": len(lists["val"]),
            "frames_240p": r["frames"]}


def build_davis2017(archive: Path, out: Path, work: Path, progress: bool = False) -> dict:
    """``DAVIS-2017-trainval-480p.zip`` -> ``out`` (its ``DAVIS/`` folder as released).

    Raises:
        ValueError: no ``JPEGImages/480p``, ``Annotations/480p``,
            ``ImageSets/2017/{train,val}.txt``, or a listed sequence without frames.
    """
    expected = ("DAVIS/JPEGImages/480p/<seq>/, DAVIS/Annotations/480p/<seq>/ and "
                "DAVIS/ImageSets/2017/{train,val}.txt (DAVIS-2017-trainval-480p.zip)")
    extract_zip(archive, work, progress=progress)
    src = _find_dataset_folder(work, ("JPEGImages/480p", "Annotations/480p", "ImageSets/2017"),
                               archive, expected)
    counts = {}
    for split in ("train", "val"):
        lst = src / "ImageSets" / "2017" / f"{split}.txt"
        if not lst.is_file():
            raise ValueError(f"{archive} does not have the expected layout: no {lst.name} in "
                             f"ImageSets/2017; expected {expected}")
        names = read_sequence_list(lst)
        _check_davis_sequences(src, names, f"ImageSets/2017/{split}.txt", archive)
        counts[split] = len(names)
    out.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        os.replace(entry, out / entry.name)
    return counts


# -- the project's layout: COCO subset ----------------------------------------------------------


def _coco_polygons(doc: dict) -> dict[int, list]:
    polygons: dict[int, list] = {}  # non-crowd instances with polygon masks, per image
    for a in doc["annotations"]:
        if not a.get("iscrowd", 0) and isinstance(a.get("segmentation"), list) \
                and a["segmentation"]:
            polygons.setdefault(a["image_id"], []).append(a)
    return polygons


def _write_coco_subset(ann_files: dict[str, Path], put_image: Callable[[str, dict, Path], None],
                       out: Path, per_split: int, splits: Sequence[str],
                       progress: bool = False) -> dict:
    from tqdm import tqdm

    dst_json = out / "annotations" / "instances.json"
    new_images, anns, licenses = [], [], []
    for split in splits:
        ann_file = ann_files[split]
        src = json.loads(Path(ann_file).read_text())
        licenses = licenses or src.get("licenses", [])
        polygons = _coco_polygons(src)
        chosen = sorted((im for im in src["images"] if im["id"] in polygons),
                        key=lambda im: im["id"])[:per_split]
        if len(chosen) < per_split:
            raise ValueError(f"only {len(chosen)} images with polygon instances in {ann_file}, "
                             f"asked for {per_split}")
        for im in tqdm(chosen, desc=f"images {split}", unit="img", disable=not progress,
                       file=sys.stderr):
            d = out / "images" / split / im["file_name"]
            d.parent.mkdir(parents=True, exist_ok=True)
            if not d.exists():
                put_image(split, im, d)
            new_images.append({"id": im["id"], "file_name": f"{split}/{im['file_name']}",
                               "width": im["width"], "height": im["height"]})
            anns += [{**a, "category_id": 1, "coco_category_id": a["category_id"]}
                     for a in sorted(polygons[im["id"]], key=lambda a: a["id"])]
    doc = {"info": {"description": f"COCO 2017 subset (first {per_split} images of "
                                   f"{' and '.join(splits)} with instance polygons), "
                                   "class-agnostic (siammask_edu.data_get)",
                    "license": "COCO annotations CC BY 4.0; images keep their Flickr licences"},
           "licenses": licenses, "images": new_images, "annotations": anns,
           "categories": [{"id": 1, "name": "object"}]}
    dst_json.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, dst_json)
    return {"images": len(new_images), "annotations": len(anns)}


def coco_subset(coco: Path, out: Path, per_split: int = 100,
                splits: tuple[str, ...] = ("train2017", "val2017")) -> dict:
    """Write the class-agnostic COCO subset ("coco128") of the COCO-2017 root ``coco``.

    From each of ``splits`` the first ``per_split`` images by id that hold at least one
    non-crowd instance with a polygon mask, with those instances (``category_id`` 1, the
    original class kept in ``coco_category_id``; ``file_name`` relative to ``images/``),
    and the images copied to ``out/images/<split>/``; ``out/annotations/instances.json``
    is written last, atomically. The rule of the project's development subset (200 images,
    1458 instances).

    Returns:
        dict: ``images`` and ``annotations`` written.

    Raises:
        FileNotFoundError: an annotation file, image folder or listed image is missing.
        FileExistsError: ``out/annotations/instances.json`` exists.
        ValueError: a split with fewer than ``per_split`` usable images.
    """
    coco, out = Path(coco), Path(out)
    dst_json = out / "annotations" / "instances.json"
    if dst_json.exists():
        raise FileExistsError(f"{dst_json} exists: not overwriting")
    ann_files, img_dirs = {}, {}
    for split in splits:
        ann_file = coco / "annotations" / f"instances_{split}.json"
        if not ann_file.is_file():
            raise FileNotFoundError(f"{ann_file} not found: --coco must be the COCO-2017 root "
                                    "(annotations/instances_<split>.json and <split>/ or "
                                    "images/<split>/)")
        img_dir = next((d for d in (coco / split, coco / "images" / split) if d.is_dir()), None)
        if img_dir is None:
            raise FileNotFoundError(f"no image folder {coco / split} or {coco / 'images' / split}")
        ann_files[split], img_dirs[split] = ann_file, img_dir

    def copy(split, im, dst):
        s = img_dirs[split] / im["file_name"]
        if not s.is_file():
            raise FileNotFoundError(f"image {s} listed in {ann_files[split]} is missing")
        shutil.copyfile(s, dst)

    return _write_coco_subset(ann_files, copy, out, per_split, splits)


def build_coco128(archives: dict[str, Path], out: Path, work: Path, spec: DatasetSpec,
                  cache: Path, mirror: str | None, progress: bool = False,
                  per_split: int = 100,
                  splits: tuple[str, ...] = ("train2017", "val2017")) -> dict:
    """``annotations_trainval2017.zip`` (+ the images) -> :func:`coco_subset`'s layout.

    Images come from ``archives["train2017.zip"]`` / ``["val2017.zip"]`` when given, else
    from each image's official ``coco_url`` (cached under ``cache/coco2017/<split>/``).

    Raises:
        ValueError: the annotations archive lacks ``annotations/instances_<split>.json``, or
            an image archive lacks a chosen image.
        DownloadError: as :func:`fetch`.
    """
    ann_zip = archives["annotations_trainval2017.zip"]
    wanted = {f"annotations/instances_{s}.json" for s in splits}
    extract_zip(ann_zip, work, keep=lambda n: n in wanted, progress=progress)
    ann_files = {}
    for s in splits:
        f = work / "annotations" / f"instances_{s}.json"
        if not f.is_file():
            raise ValueError(f"{ann_zip} does not have the expected layout: no "
                             f"annotations/instances_{s}.json (expected COCO-2017's "
                             "annotations_trainval2017.zip)")
        ann_files[s] = f
    zips = {s: zipfile.ZipFile(archives[f"{s}.zip"]) for s in splits if f"{s}.zip" in archives}
    manual = manual_steps(spec, out.parent)

    def put(split, im, dst):
        if split in zips:
            member = f"{split}/{im['file_name']}"
            try:
                with zips[split].open(member) as src, open(dst, "xb") as fh:
                    shutil.copyfileobj(src, fh)
            except KeyError:
                raise ValueError(f"{archives[split + '.zip']} has no {member} (expected "
                                 f"COCO-2017's {split}.zip)") from None
            return
        url = im.get("coco_url") or f"{_COCO}{split}/{im['file_name']}"
        got = fetch(mirrored(url, spec.base_url, mirror), cache / "coco2017" / split,
                    im["file_name"], manual=manual, progress=False)
        shutil.copyfile(got, dst)

    try:
        return _write_coco_subset(ann_files, put, out, per_split, splits, progress=progress)
    finally:
        for z in zips.values():
            z.close()


# -- VOT -----------------------------------------------------------------------------------------


def _vot_sequences(spec: DatasetSpec, root: Path, cache: Path, mirror: str | None,
                   sequences: Sequence[str] | None, archives: dict[str, Path],
                   progress: bool) -> dict:
    manual = manual_steps(spec, root)
    desc = spec.archives[0]
    if "description.json" in archives:
        desc_path = archives["description.json"]
    else:
        desc_path = fetch(mirrored(desc.url, spec.base_url, mirror), cache / spec.name,
                          "description.json", sha256=desc.sha256, manual=manual,
                          progress=False)
    desc_url = mirrored(desc.url, spec.base_url, mirror)
    try:
        meta = json.loads(Path(desc_path).read_text())
        seqs = {s["name"]: s for s in meta["sequences"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{desc_path} is not a VOT description.json (a 'sequences' list of "
                         f"{{name, annotations, channels}}): {exc}") from None
    names = list(seqs) if not sequences else list(sequences)
    unknown = [n for n in names if n not in seqs]
    if unknown:
        raise ValueError(f"{spec.name} has no sequence {', '.join(unknown)}; it has: "
                         f"{', '.join(seqs)}")
    vot = root / "vot"
    vot.mkdir(parents=True, exist_ok=True)
    added, kept = [], []
    for name in names:
        s, dst = seqs[name], vot / name
        if dst.exists():
            kept.append(name)
            continue
        # staged beside vot/, not in it: a listing of vot/ never sees a half-built sequence
        staging = Path(tempfile.mkdtemp(prefix=f".vot-{name}.partial-", dir=root))
        try:
            def get(ref: dict, label: str, name: str = name) -> Path:
                url = mirrored(urljoin(desc_url, ref["url"]), spec.base_url, mirror)
                return fetch(url, cache / spec.name, f"{name}-{label}.zip", manual=manual,
                             progress=progress)

            ann = get(s["annotations"], "annotations")
            extract_zip(ann, staging)
            patterns = {}
            for cname, ch in s["channels"].items():
                extract_zip(get(ch, cname), staging / cname)
                patterns[cname] = ch.get("pattern", "%08d.jpg")
            gt = staging / "groundtruth.txt"
            if not gt.is_file():
                raise ValueError(f"{ann} does not have the expected layout: no groundtruth.txt "
                                 "at its top level (a VOT sequence annotations zip)")
            n_gt = len([ln for ln in gt.read_text().splitlines() if ln.strip()])
            if "color" not in patterns:
                raise ValueError(f"{desc_path}: sequence {name} has no 'color' channel")
            n_frames = 0
            while (staging / "color" / (patterns["color"] % (n_frames + 1))).is_file():
                n_frames += 1
            if n_frames == 0 or n_frames != n_gt:
                raise ValueError(f"sequence {name}: {n_frames} frames "
                                 f"color/{patterns['color']} (from 1) but {n_gt} lines in "
                                 "groundtruth.txt: wrong or truncated archives")
            os.rename(staging, dst)
            added.append(name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    listing = vot / "list.txt"
    old = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()] \
        if listing.is_file() else []
    from .io import atomic_open

    with atomic_open(listing, "w") as fh:
        fh.write("".join(f"{n}\n" for n in dict.fromkeys(old + added + kept)))
    return {"added": added, "kept": kept}


# -- the command -------------------------------------------------------------------------------


def default_root() -> Path:
    """Where ``data get`` writes without ``--root``: ``$SIAMMASK_EDU_DATA`` (created if
    missing), else the existing root :func:`siammask_edu.data_root` finds.

    Raises:
        FileNotFoundError: neither is set or found (the message says to pass ``--root``).
    """
    from .paths import ENV_VAR, data_root

    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    try:
        return data_root()
    except FileNotFoundError:
        raise FileNotFoundError(f"no dataset root: pass --root DIR (e.g. --root ../shared/data, "
                                f"where the library looks by default) or set "
                                f"${ENV_VAR}") from None


def check_writable(root: Path) -> Path:
    """Create ``root`` if needed and check that a file can be written in it.

    Raises:
        DownloadError: ``errno.EACCES`` (or the error's own) naming ``root``.
    """
    root = Path(root).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise DownloadError(exc.errno or errno.EACCES,
                            f"dataset root {root} is not writable ({exc.strerror or exc}); "
                            "choose another --root") from None
    return root


def _match_archives(spec: DatasetSpec, given: Sequence[str | os.PathLike]) -> dict[str, Path]:
    """``--archive`` files by the registry name they stand for."""
    by_name = {a.name: a for a in spec.archives}
    out: dict[str, Path] = {}
    for g in given:
        p = Path(g).expanduser()
        if p.name in by_name:
            key = p.name
        elif len(given) == 1 and len(by_name) == 1:
            key = next(iter(by_name))  # the only archive, renamed
        else:
            raise ValueError(f"--archive {p}: not one of {spec.name}'s archives "
                             f"({', '.join(by_name)}); keep the official file name")
        out[key] = check_archive(p, by_name[key].sha256)
    return out


def get_dataset(name: str | DatasetSpec, root: str | os.PathLike | None = None, *,
                archives: Sequence[str | os.PathLike] = (), mirror: str | None = None,
                cache: str | os.PathLike | None = None,
                sequences: Sequence[str] | None = None, progress: bool = True,
                log: Callable[[str], None] | None = None) -> Path:
    """Download (or take from ``archives``), extract and build one dataset under ``root``.

    Args:
        name: a name of :data:`DATASETS`, or a :class:`DatasetSpec` (e.g. one with a pinned
            ``sha256``).
        root: the dataset root (created); default :func:`default_root`.
        archives: already-downloaded archives (``--archive``), matched by file name;
            a dataset with one archive takes any name. Checked like a download, used in place.
        mirror: replaces the official ``base_url`` (default ``$SIAMMASK_EDU_DATA_MIRROR``).
        cache: where downloads are kept (default ``root/.downloads``).
        sequences: VOT only: the sequences to get (default: all of the list).
        progress: tqdm bars on stderr.
        log: called with one line per step (default: nothing).

    Returns:
        ``root/<folder>``, complete (see the module docstring's atomicity rule).

    Raises:
        ValueError: unknown dataset (the known ones listed); ``sequences`` for a dataset that
            is not VOT; a hash mismatch; an archive of the wrong layout.
        FileExistsError: ``root/<folder>`` exists (not VOT): remove it to rebuild.
        FileNotFoundError: an ``--archive`` that does not exist; no root found.
        DownloadError: offline (URL and manual steps), interrupted (run again to resume),
            root not writable, disk full.
    """
    spec = dataset_spec(name)
    say = log or (lambda _msg: None)
    if sequences and spec.kind != "vot":
        raise ValueError(f"sequences= is for the VOT datasets, not {spec.name}")
    root = check_writable(Path(root) if root is not None else default_root())
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    cache = Path(cache).expanduser().resolve() if cache else root / ".downloads"
    given = _match_archives(spec, list(archives))
    if spec.kind == "vot":
        r = _vot_sequences(spec, root, cache, mirror, sequences, given, progress)
        say(f"{spec.name}: {len(r['added'])} sequence(s) added, {len(r['kept'])} already "
            f"present -> {root / 'vot'}")
        return root / "vot"
    target = root / spec.folder
    if target.exists():
        raise FileExistsError(f"{target} exists: not overwriting (remove it to rebuild)")
    manual = manual_steps(spec, root)
    paths: dict[str, Path] = {}
    for a in spec.archives:
        if a.name in given:
            paths[a.name] = given[a.name]
        elif a.required:
            say(f"{spec.name}: {a.url}")
            paths[a.name] = fetch(mirrored(a.url, spec.base_url, mirror), cache, a.name,
                                  sha256=a.sha256, manual=manual, progress=progress)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.partial-", dir=root))
    work = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.extract-", dir=root))
    try:
        out = staging / spec.folder
        if spec.kind == "davis2016":
            r = build_davis2016(paths["DAVIS-data.zip"], out, work, progress)
        elif spec.kind == "davis2017":
            r = build_davis2017(paths[spec.archives[0].name], out, work, progress)
        elif spec.kind == "coco":
            r = build_coco128(paths, out, work, spec, cache, mirror, progress)
        else:
            raise ValueError(f"{spec.name}: unknown builder kind {spec.kind!r}")
        from . import __version__

        source = {"dataset": spec.name, "built_by": f"siammask-edu {__version__}",
                  "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "result": r,
                  "licence": spec.licence, "homepage": spec.homepage,
                  "archives": [{"file": n, "url": next(a.url for a in spec.archives
                                                       if a.name == n),
                                "bytes": p.stat().st_size,
                                "sha256": pooch.file_hash(str(p))} for n, p in paths.items()]}
        (out / "SOURCE.json").write_text(json.dumps(source, indent=2))
        if target.exists():  # built meanwhile by another process
            raise FileExistsError(f"{target} exists: not overwriting (remove it to rebuild)")
        os.rename(out, target)
    except OSError as exc:
        if _is_enospc(exc) and not isinstance(exc, DownloadError):
            raise DownloadError(errno.ENOSPC, f"no space left in {root} while building "
                                f"{spec.name}; free space or choose another --root") from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    say(f"{spec.name}: {r} -> {target}")
    return target


def describe() -> list[dict]:
    """What ``data list`` prints: one dict per dataset (name, folder, title, archives with
    url / approx_size / sha256, licence, homepage)."""
    return [{"name": s.name, "folder": s.folder, "title": s.title, "licence": s.licence,
             "homepage": s.homepage,
             "archives": [{"url": a.url, "approx_size": a.approx_size, "sha256": a.sha256,
                           "required": a.required} for a in s.archives]}
            for s in DATASETS.values()]
