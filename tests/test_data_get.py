"""siammask_edu.data_get / ``siammask-edu data``: downloads from a local HTTP server on
127.0.0.1 (started here, serving small archives built here in the official layouts):
success, a corrupted download, an interrupted download resumed, no network, ``--archive``,
and the bad inputs (unknown name, root not writable, disk full, wrong layout)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import socket
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from siammask_edu import data_get as dg
from siammask_edu.cli import main as cli_main

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)  # requests would send 127.0.0.1 through a proxy


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}  # path -> body
        self.cut: dict[str, int] = {}  # path -> bytes sent before closing (once)
        self.ranges = True  # honour Range / If-Range
        self.log: list[tuple[str, str | None]] = []  # (path, Range header)
        self.sent = 0  # body bytes sent in all

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv: _Server = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        start = 0
        if rng and srv.ranges and self.headers.get("If-Range", etag) == etag:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.end_headers()
        data = body[start:]
        cut = srv.cut.pop(self.path, None)
        if cut is not None:  # the connection drops mid-body
            data = data[:cut]
            self.close_connection = True
        self.wfile.write(data)
        srv.sent += len(data)


@pytest.fixture
def server():
    srv = _Server()
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _jpg(img) -> bytes:
    return cv2.imencode(".jpg", img)[1].tobytes()


def _png(img) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def _davis_zip(top: str = "DAVIS/") -> bytes:
    """DAVIS-data.zip in miniature: 480p + 1080p, ImageSets/480p in the 2016 line format."""
    e = {}
    for s, name in enumerate(("bear", "boat", "dog")):
        for k in range(2):
            img = np.full((480, 854, 3), 40 * s + 20 * k, np.uint8)
            mask = np.zeros((480, 854), np.uint8)
            mask[100:300, 200 + 10 * k:500] = 255
            e[f"{top}JPEGImages/480p/{name}/{k:05d}.jpg"] = _jpg(img)
            e[f"{top}Annotations/480p/{name}/{k:05d}.png"] = _png(mask)
            e[f"{top}JPEGImages/1080p/{name}/{k:05d}.jpg"] = b"not extracted"
    line = "/JPEGImages/480p/{0}/{1:05d}.jpg /Annotations/480p/{0}/{1:05d}.png\n"
    e[f"{top}ImageSets/480p/train.txt"] = "".join(line.format(n, k) for n in ("bear", "boat")
                                                   for k in range(2)).encode()
    e[f"{top}ImageSets/480p/val.txt"] = "".join(line.format("dog", k) for k in range(2)).encode()
    e[f"{top}ImageSets/1080p/train.txt"] = b"x"
    e[f"{top}README.md"] = b"DAVIS 2016\n"
    return _zip(e)


DAVIS_PATH = "/DAVIS-data.zip"


def _spec(sha256=None) -> dg.DatasetSpec:
    spec = dg.DATASETS["davis2016"]
    if sha256 is None:
        return spec
    return replace(spec, archives=(replace(spec.archives[0], sha256=sha256),))


def _no_leftovers(root: Path) -> None:
    hidden = [p.name for p in root.iterdir() if ".partial-" in p.name or ".extract-" in p.name]
    assert not hidden, hidden


def test_get_davis2016_builds_the_project_layout(server, tmp_path):
    body = _davis_zip()
    server.files[DAVIS_PATH] = body
    root = tmp_path / "data"
    target = dg.get_dataset("davis2016", root, mirror=server.url, progress=False)
    assert target == root / "davis2016"
    assert (target / "ImageSets" / "2016" / "train.txt").read_text() == "bear\nboat\n"
    assert (target / "ImageSets" / "2016" / "val.txt").read_text() == "dog\n"
    assert sorted(p.name for p in (target / "JPEGImages" / "480p").iterdir()) == \
        ["bear", "boat", "dog"]
    assert not (target / "JPEGImages" / "1080p").exists()
    f = cv2.imread(str(target / "JPEGImages" / "240p" / "boat" / "00001.jpg"))
    m = cv2.imread(str(target / "Annotations" / "240p" / "bear" / "00000.png"), 0)
    assert f.shape == (240, 427, 3) and set(np.unique(m)) == {0, 255}
    assert not (target / "JPEGImages" / "240p" / "dog").exists()  # val: 480p only
    src = json.loads((target / "SOURCE.json").read_text())
    assert src["archives"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert (target / "README.md").is_file()
    _no_leftovers(root)
    # what the library reads
    from siammask_edu.datasets import build_sources
    from siammask_edu.paths import davis_sequence

    assert davis_sequence("dog", root=root)[0].is_dir()
    (s,) = build_sources([{"type": "davis", "resolution": "240p", "root": str(target)}])
    assert [len(t.frames) for t in s.tracks] == [2, 2]
    # never overwritten; a rebuild reuses the cached archive (no second request)
    with pytest.raises(FileExistsError, match="davis2016 exists"):
        dg.get_dataset("davis2016", root, mirror=server.url, progress=False)
    import shutil

    shutil.rmtree(target)
    n = len(server.log)
    dg.get_dataset("davis2016", root, mirror=server.url, progress=False)
    assert len(server.log) == n and (target / "ImageSets" / "2016" / "val.txt").is_file()


def test_corrupted_download_is_refused_and_removed(server, tmp_path):
    body = _davis_zip()
    good = hashlib.sha256(body).hexdigest()
    server.files[DAVIS_PATH] = body[:-100] + bytes(100)  # same length, wrong bytes
    root = tmp_path / "data"
    with pytest.raises(ValueError, match=f"SHA-256 does not match the expected {good}") as ei:
        dg.get_dataset(_spec(sha256=good), root, mirror=server.url, progress=False)
    assert server.url + "DAVIS-data.zip" in str(ei.value)
    assert sorted(p.name for p in (root / ".downloads").iterdir()) == []  # nothing kept
    assert not (root / "davis2016").exists()
    _no_leftovers(root)
    # the right file then passes the same check
    server.files[DAVIS_PATH] = body
    assert dg.get_dataset(_spec(sha256=good), root, mirror=server.url, progress=False).is_dir()


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path, capsys):
    body = _davis_zip()
    half = len(body) // 2
    server.files[DAVIS_PATH] = body
    server.cut[DAVIS_PATH] = half
    root = tmp_path / "data"
    spec = _spec(sha256=hashlib.sha256(body).hexdigest())
    with pytest.raises(dg.DownloadError, match="interrupted after .* run the same command "
                                               "again to resume"):
        dg.get_dataset(spec, root, mirror=server.url, progress=False)
    part = root / ".downloads" / "DAVIS-data.zip.part"
    assert part.stat().st_size == half
    assert not (root / "davis2016").exists()
    assert not (root / ".downloads" / "DAVIS-data.zip").exists()
    capsys.readouterr()
    dg.get_dataset(spec, root, mirror=server.url, progress=True)
    assert "DAVIS-data.zip" in capsys.readouterr().err  # the tqdm bar, from the resumed byte
    assert server.log[-1] == (DAVIS_PATH, f"bytes={half}-")
    assert server.sent == len(body)  # the first half was not sent twice
    assert not part.exists() and (root / "davis2016" / "ImageSets" / "2016").is_dir()


def test_a_server_without_ranges_restarts_from_zero(server, tmp_path):
    body = _davis_zip()
    server.files[DAVIS_PATH] = body
    server.cut[DAVIS_PATH] = len(body) // 3
    server.ranges = False
    root = tmp_path / "data"
    with pytest.raises(dg.DownloadError, match="interrupted"):
        dg.get_dataset("davis2016", root, mirror=server.url, progress=False)
    dg.get_dataset("davis2016", root, mirror=server.url, progress=False)
    cached = root / ".downloads" / "DAVIS-data.zip"
    assert cached.read_bytes() == body  # not the first third spliced onto a whole copy


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


def test_offline_fails_at_once_with_the_url_and_the_manual_steps(tmp_path, capsys):
    mirror = _closed_port_url()
    t0 = time.perf_counter()
    with pytest.raises(dg.DownloadError) as ei:
        dg.get_dataset("davis2016", tmp_path / "data", mirror=mirror, progress=False)
    assert time.perf_counter() - t0 < 5
    msg = str(ei.value)
    assert "\n" not in msg and f"cannot reach {mirror}DAVIS-data.zip" in msg
    assert "https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip" in msg
    assert f"siammask-edu data get davis2016 --root {tmp_path / 'data'} --archive" in msg
    # the command line: exit 2, one line
    rc = cli_main(["data", "get", "davis2016", "--root", str(tmp_path / "d2"), "--mirror",
                   mirror, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("siammask-edu data: error: cannot reach")


def test_the_manual_steps_work_offline(tmp_path, capsys):
    archive = tmp_path / "DAVIS-data.zip"
    archive.write_bytes(_davis_zip())
    rc = cli_main(["data", "get", "davis2016", "--root", str(tmp_path / "data"), "--archive",
                   str(archive), "--mirror", _closed_port_url(), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "data" / "davis2016" / "JPEGImages" / "240p" / "bear").is_dir()
    bad = tmp_path / "x" / "DAVIS-data.zip"
    bad.parent.mkdir()
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=f"archive {bad} is not a zip"):
        dg.get_dataset("davis2016", tmp_path / "d3", archives=[bad], progress=False)


def test_unknown_dataset_lists_the_known_ones(tmp_path, capsys):
    rc = cli_main(["data", "get", "davis2019", "--root", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "unknown dataset 'davis2019'; known: davis2016, davis2017, coco128, vot2016, " \
           "vot2018" in err
    assert cli_main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in dg.known_datasets():
        assert name in out
    assert "https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip" in out


def test_a_root_that_is_not_writable_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(dg.DownloadError, match=f"dataset root {blocker / 'data'} is not "
                                               "writable"):
        dg.get_dataset("davis2016", blocker / "data", progress=False)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(dg.DownloadError, match=f"dataset root {ro} is not writable"):
            dg.get_dataset("davis2016", ro, progress=False)


def test_a_full_disk_is_reported_before_downloading(server, tmp_path, monkeypatch):
    server.files[DAVIS_PATH] = _davis_zip()
    monkeypatch.setattr(dg, "_free_bytes", lambda path: 1000)
    with pytest.raises(dg.DownloadError, match="not enough space in .*\\.downloads") as ei:
        dg.get_dataset("davis2016", tmp_path / "data", mirror=server.url, progress=False)
    assert ei.value.errno == errno.ENOSPC


def test_a_disk_filling_up_during_extraction_leaves_nothing(tmp_path, monkeypatch):
    archive = tmp_path / "DAVIS-data.zip"
    archive.write_bytes(_davis_zip())
    calls = []

    def extract(self, member, path=None, pwd=None):
        calls.append(member)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, member, path, pwd)

    real = zipfile.ZipFile.extract
    monkeypatch.setattr(zipfile.ZipFile, "extract", extract)
    root = tmp_path / "data"
    with pytest.raises(dg.DownloadError, match=f"no space left in {root}") as ei:
        dg.get_dataset("davis2016", root, archives=[archive], progress=False)
    assert ei.value.errno == errno.ENOSPC and str(archive) in str(ei.value)
    assert not (root / "davis2016").exists()
    _no_leftovers(root)


def test_an_archive_of_the_wrong_layout_is_named(tmp_path):
    archive = tmp_path / "DAVIS-data.zip"
    archive.write_bytes(_zip({"DAVIS/JPEGImages/bear/00000.jpg": b"x", "DAVIS/README": b""}))
    root = tmp_path / "data"
    with pytest.raises(ValueError, match=f"{archive} does not have the expected layout: "
                                         "expected DAVIS/JPEGImages/480p"):
        dg.get_dataset("davis2016", root, archives=[archive], progress=False)
    assert not (root / "davis2016").exists()
    _no_leftovers(root)
    # listed sequence without frames (a truncated archive)
    data = zipfile.ZipFile(io.BytesIO(_davis_zip()))
    entries = {n: data.read(n) for n in data.namelist() if "/boat/" not in n}
    archive.write_bytes(_zip(entries))
    with pytest.raises(ValueError, match="sequence 'boat' of ImageSets/480p/train.txt has no"):
        dg.get_dataset("davis2016", root, archives=[archive], progress=False)
    _no_leftovers(root)


def test_davis2017_keeps_the_released_folder(server, tmp_path):
    e = {}
    for name in ("bike-packing", "bear"):
        e[f"DAVIS/JPEGImages/480p/{name}/00000.jpg"] = _jpg(np.zeros((48, 85, 3), np.uint8))
        e[f"DAVIS/Annotations/480p/{name}/00000.png"] = _png(np.zeros((48, 85), np.uint8))
    e["DAVIS/ImageSets/2017/train.txt"] = b"bear\n"
    e["DAVIS/ImageSets/2017/val.txt"] = b"bike-packing\n"
    e["DAVIS/ImageSets/2016/val.txt"] = b"bear\n"
    server.files["/DAVIS-2017-trainval-480p.zip"] = _zip(e)
    t = dg.get_dataset("davis2017", tmp_path, mirror=server.url, progress=False)
    assert (t / "ImageSets" / "2017" / "val.txt").read_text() == "bike-packing\n"
    assert (t / "Annotations" / "480p" / "bear" / "00000.png").is_file()


def _coco_annotations_zip(server: _Server) -> bytes:
    """annotations_trainval2017.zip in miniature; coco_url on the official host."""
    files = {}
    for split, ids in (("train2017", [30, 9, 25]), ("val2017", [139, 285])):
        images, anns = [], []
        for i in ids:
            name = f"{i:012d}.jpg"
            server.files[f"/{split}/{name}"] = _jpg(np.full((240, 320, 3), i % 255, np.uint8))
            images.append({"id": i, "file_name": name, "width": 320, "height": 240,
                           "coco_url": f"http://images.cocodataset.org/{split}/{name}"})
            poly = [[20, 20, 200, 20, 200, 160, 20, 160]]
            anns.append({"id": 10 * i, "image_id": i, "category_id": 18, "iscrowd": 0,
                         "segmentation": poly, "area": 25200.0, "bbox": [20, 20, 180, 140]})
            if i == 25:  # only a crowd instance: not usable
                anns[-1].update(iscrowd=1, segmentation={"counts": [0, 10], "size": [240, 320]})
        files[f"annotations/instances_{split}.json"] = json.dumps(
            {"images": images, "annotations": anns, "licenses": [],
             "categories": [{"id": 18, "name": "dog"}]}).encode()
    files["annotations/captions_train2017.json"] = b"{}"
    return _zip(files)


def test_coco128_fetches_only_the_chosen_images(server, tmp_path):
    server.files["/annotations/annotations_trainval2017.zip"] = _coco_annotations_zip(server)
    root = tmp_path / "data"
    builder = dg.build_coco128

    def small(*a, **k):  # the rule of the real subset, 2 images a split instead of 100
        return builder(*a, **{**k, "per_split": 2})

    from unittest import mock

    with mock.patch.object(dg, "build_coco128", small):
        t = dg.get_dataset("coco128", root, mirror=server.url, progress=False)
    doc = json.loads((t / "annotations" / "instances.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == [
        "train2017/000000000009.jpg", "train2017/000000000030.jpg",
        "val2017/000000000139.jpg", "val2017/000000000285.jpg"]
    assert "/train2017/000000000025.jpg" not in [p for p, _ in server.log]
    from siammask_edu.datasets import build_sources

    (src,) = build_sources([{"type": "coco", "root": str(t)}])
    assert len(src.tracks) == 4


def _vot_server(server: _Server) -> None:
    seqs = []
    for name, n in (("bag", 3), ("book", 2)):
        server.files[f"/{name}.zip"] = _zip({
            "groundtruth.txt": b"".join(b"1,1,9,1,9,9,1,9\n" for _ in range(n)),
            "occlusion.tag": b"0\n" * n})
        server.files[f"/color/{name}.zip"] = _zip({
            f"{k:08d}.jpg": _jpg(np.zeros((12, 16, 3), np.uint8)) for k in range(1, n + 1)})
        seqs.append({"name": name, "fps": 30,
                     "annotations": {"url": f"{name}.zip", "uid": "x", "uncompressed": 1},
                     "channels": {"color": {"url": f"color/{name}.zip", "uid": "y",
                                            "pattern": "%08d.jpg", "uncompressed": 1}}})
    server.files["/description.json"] = json.dumps({"name": "vot", "sequences": seqs}).encode()


def test_vot_sequences_from_the_toolkit_description(server, tmp_path):
    _vot_server(server)
    root = tmp_path / "data"
    vot = dg.get_dataset("vot2018", root, mirror=server.url, sequences=["book"], progress=False)
    assert (vot / "list.txt").read_text() == "book\n"
    assert sorted(p.name for p in (vot / "book" / "color").iterdir()) == \
        ["00000001.jpg", "00000002.jpg"]
    assert (vot / "book" / "occlusion.tag").is_file()
    dg.get_dataset("vot2018", root, mirror=server.url, progress=False)
    assert (vot / "list.txt").read_text() == "book\nbag\n"
    from siammask_edu.paths import vot_sequence

    assert (vot_sequence("bag", root=root) / "groundtruth.txt").is_file()
    with pytest.raises(ValueError, match="has no sequence nope; it has: bag, book"):
        dg.get_dataset("vot2018", root, mirror=server.url, sequences=["nope"], progress=False)
    # a truncated colour archive: refused, and no sequence folder left looking complete
    server.files["/color/bag.zip"] = _zip({"00000001.jpg": b"x"})
    root2 = tmp_path / "data2"
    with pytest.raises(ValueError, match="sequence bag: 1 frames .* but 3 lines"):
        dg.get_dataset("vot2018", root2, mirror=server.url, sequences=["bag"], progress=False)
    assert [p.name for p in (root2 / "vot").iterdir()] == []
    _no_leftovers(root2)
