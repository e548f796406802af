"""ONNX export of the three graphs the tracker needs, and an onnxruntime tracker backend.

Graphs (opset 17; batch axis dynamic except for the search graph, whose depth-wise
correlation is a grouped convolution with ``groups = B * C``: it is exported for batch 1 and
:class:`OnnxModel` runs a batch one crop at a time):

* ``exemplar.onnx``: ``z (B, 3, 127, 127)`` -> ``zf``, ``k_score``, ``k_box``, ``k_mask``
  (the per-head exemplar kernels, ``(B, 256, 5, 5)``);
* ``search.onnx``: ``x (B, 3, 255, 255)`` and the three kernels -> ``score (B, 2k, 25, 25)``,
  ``delta (B, 4k, 25, 25)``, ``mask_corr (B, 256, 25, 25)``, ``p0``, ``p1``, ``p2``;
* ``mask.onnx``: the mask of one RoW: sharp models ``vec (B, 256, 1, 1)`` and the backbone
  windows ``q0, q1, q2`` (cut by :meth:`Refine.windows_at`, plain slicing done by the
  backend) -> ``logits (B, 1, 127, 127)``; models without refinement ``vec`` -> the mask
  head's ``(B, 3969, 1, 1)``.

:class:`OnnxModel` runs them with onnxruntime behind the model interface of the tracker:
``template`` (at init), ``track`` (the :func:`~siammask_edu.step.run_network` stage) and
``refine_at`` / ``mask_at`` (the :func:`~siammask_edu.step.row_mask_logits` stage).
``Tracker(OnnxModel(...))`` then runs the same :class:`~siammask_edu.step.TrackStep` as
every other consumer (``MultiTracker``, ``bench.timed_track``, ``trace_tracker``): only the
network stages differ from the PyTorch model's.

See book/11_speed.py.
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..models.siammask import Exemplar, SearchOutputs
from .fold import fold_batchnorm

OPSET = 17
META = "meta.json"
GRAPHS = ("exemplar", "search", "mask")
# keys of each graph's ONNX metadata_props written by export_onnx (read back by OnnxModel)
ID_KEY = "siammask_edu.export_id"
GRAPH_KEY = "siammask_edu.graph"
CREATED_KEY = "siammask_edu.created"
MODEL_KEY = "siammask_edu.model"


def _stamp(path: Path, props: dict[str, str]) -> None:
    """Add ``props`` to the ``metadata_props`` of the ONNX file at ``path``."""
    import onnx

    m = onnx.load(str(path))
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, str(path))


class _ExemplarGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, z: Tensor):
        zf = self.m.neck(self.m.backbone(z)[3])
        return (zf, self.m.score_head.kernel(zf), self.m.box_head.kernel(zf),
                self.m.mask_head.kernel(zf))


class _SearchGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x: Tensor, k_score: Tensor, k_box: Tensor, k_mask: Tensor):
        m = self.m
        feats = m.backbone(x)
        xf = m.neck(feats[3])
        score = m.score_head.head(m.score_head.correlate(k_score, xf))
        delta = m.box_head.head(m.box_head.correlate(k_box, xf))
        corr = m.mask_head.correlate(k_mask, xf)
        return score, delta, corr, feats[0], feats[1], feats[2]


class _RefineGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.r = model.refine

    def forward(self, vec: Tensor, q0: Tensor, q1: Tensor, q2: Tensor):
        return self.r._decode(vec, q0, q1, q2)


class _MaskHeadGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.h = model.mask_head.head

    def forward(self, vec: Tensor):
        return self.h(vec)


def export_onnx(model, out_dir, opset: int = OPSET, fold: bool = True) -> dict[str, Path]:
    """Export the exemplar, search and mask graphs of a three-branch SiamMask.

    Args:
        model: a three-branch :class:`~siammask_edu.models.SiamMask` (sharp, base, lite,
            tiny), fp32; it is not modified.
        out_dir: folder for ``exemplar.onnx``, ``search.onnx``, ``mask.onnx`` (created).
        opset: ONNX opset, >= 17.
        fold: fold BatchNorm into the convolutions first (:func:`fold_batchnorm`).

    Returns:
        ``{"exemplar": path, "search": path, "mask": path}``. Beside them ``meta.json``
        records the refinement windows, steps and paddings (released ``61/31/15``, lite
        ``64/32/16``), which :class:`OnnxModel` reads back, the model configuration, and
        the export's id. The id (a random UUID of this call), the graph's name, the time
        and the model preset are also written into each graph's ONNX ``metadata_props``
        (``siammask_edu.export_id``, ``.graph``, ``.created``, ``.model``), so that
        :class:`OnnxModel` can tell graphs of different exports apart.

    Raises:
        ValueError: a two-branch model or ``opset < 17``.
        ImportError: without the ``onnx`` package (``pip install siammask-edu[export]``).

    See book/11_speed.py.
    """
    if getattr(model, "box_head", None) is None:
        raise ValueError("export needs a three-branch SiamMask (score, box and mask heads)")
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    import onnx  # noqa: F401  (clear ImportError before tracing)

    m = fold_batchnorm(model.eval()).cpu() if fold else model.eval().cpu()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    z = torch.rand(1, 3, 127, 127) * 255
    x = torch.rand(1, 3, 255, 255) * 255
    paths = {g: out / f"{g}.onnx" for g in GRAPHS}
    batch = {0: "batch"}
    kw = {"opset_version": opset, "dynamo": False, "do_constant_folding": True}
    with torch.no_grad(), warnings.catch_warnings():
        # Expected, and not the user's to act on: the TorchScript exporter is chosen on
        # purpose (dynamo=False: the grouped xcorr and the refinement windows trace, they do
        # not export with torch.export), and its TracerWarnings flag our shape checks, which
        # are constants for the fixed 127/255 export sizes. check_onnx verifies the graphs.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export",
                                category=DeprecationWarning)
        ex = _ExemplarGraph(m)
        _, ks, kb, km = ex(z)
        torch.onnx.export(ex, (z,), str(paths["exemplar"]), input_names=["z"],
                          output_names=["zf", "k_score", "k_box", "k_mask"],
                          dynamic_axes={n: batch for n in ["z", "zf", "k_score", "k_box",
                                                           "k_mask"]}, **kw)
        se = _SearchGraph(m)
        names = ["score", "delta", "mask_corr", "p0", "p1", "p2"]
        torch.onnx.export(se, (x, ks, kb, km), str(paths["search"]),
                          input_names=["x", "k_score", "k_box", "k_mask"], output_names=names,
                          **kw)  # batch 1: the grouped xcorr's groups depend on the batch
        feats = m.backbone(x)
        corr = m.mask_head.correlate(km, m.neck(feats[3]))
        vec = corr[:, :, 12:13, 12:13]
        if m.refine is not None:
            q = m.refine.windows_at(feats, 12, 12)
            torch.onnx.export(_RefineGraph(m), (vec, *q), str(paths["mask"]),
                              input_names=["vec", "q0", "q1", "q2"], output_names=["logits"],
                              dynamic_axes={n: batch for n in ["vec", "q0", "q1", "q2",
                                                               "logits"]}, **kw)
        else:
            torch.onnx.export(_MaskHeadGraph(m), (vec,), str(paths["mask"]),
                              input_names=["vec"], output_names=["logits"],
                              dynamic_axes={"vec": batch, "logits": batch}, **kw)
    export_id = uuid.uuid4().hex
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    name = getattr(getattr(model, "config", None), "name", "")
    for g, p in paths.items():
        _stamp(p, {ID_KEY: export_id, GRAPH_KEY: g, CREATED_KEY: created, MODEL_KEY: name})
    meta = {"opset": opset, "folded": bool(fold), "refine": m.refine is not None,
            "export_id": export_id, "created": created}
    if hasattr(getattr(model, "config", None), "to_dict"):
        meta["model_config"] = model.config.to_dict()
    if m.refine is not None:
        meta["refine_windows"] = [list(m.refine.windows), list(m.refine.steps),
                                  list(m.refine.pads)]
    (out / META).write_text(json.dumps(meta, indent=2))
    return paths


class _Flag:
    """Truthy stand-in for a submodule the tracker only tests for presence."""

    def __bool__(self) -> bool:
        return True


class OnnxModel:
    """A SiamMask network on onnxruntime, usable as ``Tracker(OnnxModel(model_dir, cfg))``
    (or ``MultiTracker``): the tracker's step calls ``track`` for the ``network`` stage and
    ``refine_at`` / ``mask_at`` for the ``mask`` stage (:mod:`siammask_edu.step`).

    Args:
        model_dir: folder written by :func:`export_onnx`.
        config: the :class:`~siammask_edu.config.ModelConfig` of the exported model (for
            ``refine``, ``mask_size`` and the refinement windows).
        refine_windows: ``(windows, steps, pads)`` of the refinement module; default:
            those recorded in the folder's ``meta.json`` by :func:`export_onnx`, else the
            released ``((61, 31, 15), (4, 2, 1), (16, 8, 4))``.
        threads: onnxruntime intra-op threads (``None``: onnxruntime's default).
        providers: onnxruntime execution providers (default CPU).

    Raises:
        ImportError: without onnxruntime (``pip install siammask-edu[export]``).
        FileNotFoundError: a graph file is missing.
        ValueError: the graphs do not belong together: their export ids (written by
            :func:`export_onnx`) differ from each other or from ``meta.json``, a file holds
            another graph than its name says, or the tensors one graph passes to the next
            have other shapes; or ``config.refine`` does not match the mask graph. A folder
            exported before the ids existed is checked on shapes only, with a warning.

    See book/11_speed.py.
    """

    def __init__(self, model_dir, config, refine_windows=None, threads: int | None = None,
                 providers=("CPUExecutionProvider",)) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if threads is not None:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        d = Path(model_dir)
        self.sessions = {}
        for g in GRAPHS:
            p = d / f"{g}.onnx"
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found; run export_onnx(model, {str(d)!r})")
            self.sessions[g] = ort.InferenceSession(os.fspath(p), so, providers=list(providers))
        meta = json.loads((d / META).read_text()) if (d / META).is_file() else {}
        self._check_together(d, meta)
        refine_graph = any(i.name == "q0" for i in self.sessions["mask"].get_inputs())
        if bool(config.refine) != refine_graph:
            raise ValueError(
                f"config.refine={config.refine} but {d / 'mask.onnx'} is the "
                f"{'refinement' if refine_graph else 'mask-head'} graph of a model "
                f"{'with' if refine_graph else 'without'} refinement; pass the ModelConfig "
                f"of the exported model" + (f" ({meta['model_config'].get('name')!r})"
                                            if isinstance(meta.get("model_config"), dict)
                                            else ""))
        self.config = config
        self.box_head = _Flag()
        self.refine = _Flag() if config.refine else None
        if refine_windows is None:
            refine_windows = meta.get("refine_windows")
        w = refine_windows or ((61, 31, 15), (4, 2, 1), (16, 8, 4))
        self.windows, self.steps, self.pads = (tuple(int(v) for v in t) for t in w)

    def _check_together(self, d: Path, meta: dict) -> None:
        """Raise a ``ValueError`` unless the three graphs come from one :func:`export_onnx`."""
        props = {g: dict(s.get_modelmeta().custom_metadata_map)
                 for g, s in self.sessions.items()}
        head = f"the ONNX graphs in {d} do not belong together: "
        tail = (f"; export_onnx writes the three graphs and {META} together: re-export them "
                f"into one folder (export_onnx(model, {str(d)!r}))")
        for g, pr in props.items():
            if pr.get(GRAPH_KEY, g) != g:
                raise ValueError(f"{head}{g}.onnx holds the {pr[GRAPH_KEY]!r} graph{tail}")
        ids = {g: pr.get(ID_KEY) for g, pr in props.items()}
        ref = meta.get("export_id") or ids["exemplar"] or ids["search"] or ids["mask"]
        if ref is None:
            warnings.warn(f"{d}: the graphs have no export id (exported before siammask-edu "
                          "recorded one), so OnnxModel can only check their shapes fit; "
                          "re-export them to have it check they come from one export",
                          stacklevel=3)
        else:
            odd = [g for g in GRAPHS if ids[g] != ref]
            if odd:
                def what(g):
                    pr = props[g]
                    if ids[g] is None:
                        return f"{g}.onnx (no export id: an older export)"
                    return (f"{g}.onnx (export {ids[g][:8]}, {pr.get(CREATED_KEY, '?')}, "
                            f"model {pr.get(MODEL_KEY, '?')!r})")
                same = [g for g in GRAPHS if g not in odd]
                where = (f"{', '.join(f'{g}.onnx' for g in same)} and {META} "
                         if meta.get("export_id") and same else
                         f"{', '.join(f'{g}.onnx' for g in same) or META} ")
                raise ValueError(
                    f"{head}{'; '.join(what(g) for g in odd)} "
                    f"{'comes' if len(odd) == 1 else 'come'} from another export than "
                    f"{where}(export {ref[:8]}, {meta.get('created', '?')}){tail}")
        # the tensors each graph hands to the next must fit (catches older exports too)
        outs = {o.name: o.shape for o in self.sessions["exemplar"].get_outputs()}
        outs.update({o.name: o.shape for o in self.sessions["search"].get_outputs()})
        for g in ("search", "mask"):
            for i in self.sessions[g].get_inputs():
                src = {"vec": "mask_corr", "q0": "p0", "q1": "p1", "q2": "p2"}.get(i.name, i.name)
                if src not in outs:
                    continue
                a, b = outs[src], i.shape
                # static sizes that must agree: channels everywhere, all but batch for kernels
                dims = range(1, len(b)) if i.name.startswith("k_") else [1]
                if len(a) != len(b) or any(isinstance(a[k], int) and isinstance(b[k], int)
                                           and a[k] != b[k] for k in dims):
                    giver = "exemplar" if src.startswith(("k_", "zf")) else "search"
                    raise ValueError(f"{head}{giver}.onnx gives {src} of shape {a} but "
                                     f"{g}.onnx expects {i.name} of shape {b}: graphs of "
                                     f"another architecture{tail}")

    # the nn.Module calls Tracker makes
    def to(self, device) -> OnnxModel:
        return self

    def eval(self) -> OnnxModel:
        return self

    @staticmethod
    def _np(t) -> np.ndarray:
        return np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy(), np.float32)

    def template(self, z: Tensor) -> Exemplar:
        """Exemplar graph: ``z (B, 3, 127, 127)`` -> :class:`Exemplar` (kernels as tensors)."""
        zf, ks, kb, km = self.sessions["exemplar"].run(None, {"z": self._np(z)})
        return Exemplar(zf=torch.from_numpy(zf), kernels={
            "score": torch.from_numpy(ks), "box": torch.from_numpy(kb),
            "mask": torch.from_numpy(km)})

    def track(self, x: Tensor, exemplar: Exemplar, mask_head: bool | None = None
              ) -> SearchOutputs:
        """Search graph; ``mask_head`` is ignored (the dense head is never computed)."""
        xs = self._np(x)
        ks = {n: self._np(exemplar.kernels[n]) for n in ("score", "box", "mask")}
        outs = []
        for i in range(xs.shape[0]):
            feeds = {"x": xs[i:i + 1]}
            for n, k in ks.items():
                feeds[f"k_{n}"] = k[:1] if k.shape[0] == 1 else k[i:i + 1]
            outs.append(self.sessions["search"].run(None, feeds))
        score, delta, corr, p0, p1, p2 = (torch.from_numpy(np.concatenate(v)) for v in zip(*outs))
        return SearchOutputs(score, delta, None, corr, torch.empty(0), [p0, p1, p2])

    def refine_at(self, out: SearchOutputs, row: int, col: int) -> Tensor:
        """Refined ``(B, 1, 127, 127)`` logits at RoW (row, col) (windows cut here)."""
        if self.refine is None:
            raise ValueError("this exported model has no refinement module")
        h, w = out.mask_corr.shape[2:]
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"RoW (row={row}, col={col}) outside the {h}x{w} response map")
        feeds = {"vec": self._np(out.mask_corr[:, :, row:row + 1, col:col + 1])}
        for i, (f, win, s, p) in enumerate(zip(out.features[:3], self.windows, self.steps,
                                               self.pads)):
            fp = torch.nn.functional.pad(f, [p, p, p, p])
            feeds[f"q{i}"] = self._np(fp[:, :, s * row:s * row + win, s * col:s * col + win])
        return torch.from_numpy(self.sessions["mask"].run(None, feeds)[0])

    def mask_at(self, out: SearchOutputs, row: int, col: int) -> Tensor:
        """The mask head's ``(B, 1, m, m)`` logits at RoW (row, col) (models without
        refinement)."""
        s = self.config.mask_size
        vec = self._np(out.mask_corr[:, :, row:row + 1, col:col + 1])
        logits = self.sessions["mask"].run(None, {"vec": vec})[0]
        return torch.from_numpy(logits).reshape(-1, 1, s, s)


def check_onnx(model, model_dir, seed: int = 0) -> dict[str, dict[str, float]]:
    """onnxruntime vs PyTorch (unfolded ``model``) on a random input pair (BGR 0..255):
    every output, refinement/mask at RoW (12, 12) and (0, 24).

    Returns:
        ``{"abs": {output: max |ort - torch|}, "rel": {output: that / max |torch|}}``, each
        with an overall ``"max"`` entry.

    See book/11_speed.py.
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(1, 3, 127, 127, generator=g) * 255
    x = torch.rand(1, 3, 255, 255, generator=g) * 255
    om = OnnxModel(model_dir, model.config)
    model = model.eval()
    pairs = {}
    with torch.inference_mode():
        ex, oe = model.template(z), om.template(z)
        for n in ("score", "box", "mask"):
            pairs[f"k_{n}"] = (ex.kernels[n], oe.kernels[n])
        out, oo = model.track(x, ex, mask_head=False), om.track(x, oe)
        pairs["score"] = (out.score, oo.score)
        pairs["delta"] = (out.delta, oo.delta)
        pairs["mask_corr"] = (out.mask_corr, oo.mask_corr)
        for r, c in ((12, 12), (0, 24)):
            if model.refine is not None:
                pairs[f"mask@{r},{c}"] = (model.refine_at(out, r, c), om.refine_at(oo, r, c))
            else:
                pairs[f"mask@{r},{c}"] = (model.mask_at(out, r, c), om.mask_at(oo, r, c))
    res = {"abs": {}, "rel": {}}
    for k, (a, b) in pairs.items():
        d = float((a - b).abs().max())
        res["abs"][k] = d
        res["rel"][k] = d / max(float(a.abs().max()), 1e-12)
    for v in res.values():
        v["max"] = max(v.values())
    return res


__all__ = ["GRAPHS", "ID_KEY", "META", "OPSET", "OnnxModel", "check_onnx", "export_onnx"]
