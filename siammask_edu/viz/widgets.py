"""Notebook widgets, testable without a browser (conventions §4.8).

Each widget is a small class that owns ipywidgets controls, an ``ipywidgets.Image`` fed
with PNG bytes, and a plain ``show(...)`` method that the controls' observers call; tests
drive the controls and read ``image.value``. Nothing is put behind ``ipywidgets.Output``
(it captures nothing outside a kernel) and no matplotlib state is kept.

* :class:`RowMaskViewer` — pick a RoW on the 25x25 grid, see its 63x63 mask and its score.
* :class:`TrackerStepper` — step through a tracked sequence: search crop, score map, the
  chosen RoW's mask and the frame with its polygon (records from
  :func:`siammask_edu.inspection.trace_tracker`).

See book/04_rows_anchors_heads.py and book/07_online_tracker.py.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from .figures import _np, _sigmoid, as_row_masks, row_mask_panels, row_window

_PANEL = 255  # side of each rendered panel, pixels
_GAP = 6


def _encode_png(rgb: np.ndarray) -> bytes:
    """RGB uint8 image -> PNG bytes (cv2 works in BGR, hence the flip)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise RuntimeError("cv2.imencode failed to encode a PNG")
    return buf.tobytes()


def _with_class(widget, css_class: str):
    """Give ``widget`` a stable CSS class (``add_class``) and return it: a browser test or a
    reader's stylesheet finds the control by it; nothing else changes."""
    widget.add_class(css_class)
    return widget


def _colormap(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """2-D floats -> RGB uint8 with the viridis colormap."""
    span = vmax - vmin if vmax > vmin else 1.0
    u8 = np.clip((values - vmin) / span * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_VIRIDIS)[:, :, ::-1]


def _score_panel(score: np.ndarray, row: int, col: int) -> np.ndarray:
    h, w = score.shape
    img = _colormap(score, float(score.min()), float(score.max()))
    img = cv2.resize(img, (_PANEL, _PANEL), interpolation=cv2.INTER_NEAREST)
    sy, sx = _PANEL / h, _PANEL / w
    p0 = (round(col * sx), round(row * sy))
    p1 = (round((col + 1) * sx) - 1, round((row + 1) * sy) - 1)
    img = np.ascontiguousarray(img)
    cv2.rectangle(img, p0, p1, (255, 0, 0), 2)
    return img


def _mask_panel(prob: np.ndarray, threshold: float) -> np.ndarray:
    gray = (np.clip(prob, 0, 1) * 255).astype(np.uint8)
    img = cv2.resize(np.repeat(gray[:, :, None], 3, axis=2), (_PANEL, _PANEL),
                     interpolation=cv2.INTER_NEAREST)
    # the threshold contour in red
    big = cv2.resize(prob.astype(np.float32), (_PANEL, _PANEL), interpolation=cv2.INTER_NEAREST)
    edge = (big > threshold).astype(np.uint8)
    edge = edge - cv2.erode(edge, np.ones((3, 3), np.uint8))
    img[edge.astype(bool)] = (255, 0, 0)
    return img


def _crop_panel(crop: np.ndarray, prob: np.ndarray, row: int, col: int) -> np.ndarray:
    crop = np.asarray(crop, dtype=np.uint8)
    img = cv2.resize(crop, (_PANEL, _PANEL), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    # the window is in 255-crop pixels; the panel is drawn at _PANEL pixels
    x0, y0, x1, y1 = (round(v * _PANEL / 255) for v in row_window(row, col))
    side = x1 - x0
    up = cv2.resize(prob.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    # paste the part of the window that lies inside the crop
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, _PANEL), min(y1, _PANEL)
    if cx1 > cx0 and cy1 > cy0:
        a = 0.6 * up[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]
        red = np.array([255.0, 0.0, 0.0], np.float32)
        img[cy0:cy1, cx0:cx1] = (1 - a) * img[cy0:cy1, cx0:cx1] + a * red
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 0), 1)
    return img


def render_row(masks: np.ndarray, score: np.ndarray, row: int, col: int, frame_crop=None,
               threshold: float = 0.5) -> np.ndarray:
    """The viewer's picture: score map | RoW mask | (crop with the mask in its window).

    Args:
        masks (np.ndarray[H, W, S, S]): logits, see :func:`~siammask_edu.viz.figures.as_row_masks`.
        score (np.ndarray[H, W]): one score per RoW.
        row, col: the RoW.
        frame_crop (np.ndarray[255, 255, 3] uint8 RGB | None): the search crop.
        threshold: probability of the contour drawn on the mask.

    Returns:
        np.ndarray[255, 255*n + gaps, 3] uint8 RGB, n = 2 or 3 panels.
    """
    prob = _sigmoid(masks[row, col])
    panels = [_score_panel(score, row, col), _mask_panel(prob, threshold)]
    if frame_crop is not None:
        panels.append(_crop_panel(frame_crop, prob, row, col))
    gap = np.full((_PANEL, _GAP, 3), 255, np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [gap, p]
    return np.concatenate(out, axis=1)


class RowMaskViewer:
    """Pick a RoW (response of a candidate window) and see its mask and score.

    Two sliders choose ``(row, col)`` on the response grid; the picture shows the score
    map with the RoW outlined, the RoW's mask (sigmoid of its logits, threshold contour in
    red) and, given the search crop, the mask drawn over the 127-px window of the crop that
    this RoW describes. ``ipywidgets.Image`` reports no click positions, so the sliders are
    the way to pick; :meth:`show` does the same from code.

    Args:
        mask_logits: ``(3969, 25, 25)`` (the mask head's channels; a leading batch of 1 is
            accepted) or ``(25, 25, 63, 63)``; numpy or torch.
        score (array[25, 25]): one score per RoW, e.g. the best foreground probability over
            the 5 anchors; the viewer opens at its argmax (the RoW the tracker would pick).
        frame_crop (np.ndarray[255, 255, 3] uint8 RGB | None): the search crop.
        threshold: probability of the contour drawn on the mask (0.5 as in the paper).

    Attributes:
        row, col (ipywidgets.IntSlider): the RoW.
        image (ipywidgets.Image): PNG of the current view.
        label (ipywidgets.HTML): RoW, score and mask area in text.
        widget (ipywidgets.VBox): what to display (end a notebook cell with ``viewer.widget``).
        current (tuple[int, int]): the RoW shown.

    In the browser the controls carry stable CSS classes (``CSS_CLASSES``): the box
    ``siammask-row-viewer``, its sliders ``siammask-row-viewer-row`` and
    ``siammask-row-viewer-col``, the picture ``siammask-row-viewer-image`` and the text
    ``siammask-row-viewer-label`` (tests/test_browser_widgets.py drives them).

    See book/04_rows_anchors_heads.py.
    """

    CSS_CLASSES: ClassVar[dict[str, str]] = {
        "widget": "siammask-row-viewer", "row": "siammask-row-viewer-row",
        "col": "siammask-row-viewer-col", "image": "siammask-row-viewer-image",
        "label": "siammask-row-viewer-label"}

    def __init__(self, mask_logits, score, frame_crop=None, threshold: float = 0.5) -> None:
        import ipywidgets as w

        self.masks = as_row_masks(mask_logits)  # (H, W, S, S)
        gh, gw = self.masks.shape[:2]
        sc = _np(score).astype(np.float32)
        if sc.size != gh * gw:
            raise ValueError(f"score has shape {sc.shape}, expected {gh * gw} values ({gh}x{gw})")
        self.score = sc.reshape(gh, gw)
        if frame_crop is not None:
            frame_crop = np.asarray(frame_crop)
            if frame_crop.ndim != 3 or frame_crop.shape[2] != 3 or frame_crop.dtype != np.uint8:
                raise ValueError(
                    f"frame_crop must be an (H, W, 3) uint8 RGB image, got {frame_crop.shape} "
                    f"{frame_crop.dtype}"
                )
        self.frame_crop = frame_crop
        self.threshold = threshold
        r0, c0 = (int(i) for i in np.unravel_index(int(np.argmax(self.score)), (gh, gw)))
        self._current = (r0, c0)
        self._syncing = False
        self.row = w.IntSlider(value=r0, min=0, max=gh - 1, description="row")
        self.col = w.IntSlider(value=c0, min=0, max=gw - 1, description="col")
        self.image = w.Image(format="png")
        self.label = w.HTML()
        self.widget = w.VBox([w.HBox([self.row, self.col]), self.image, self.label])
        for name, css in self.CSS_CLASSES.items():
            _with_class(getattr(self, name), css)
        self.row.observe(self._on_slider, names="value")
        self.col.observe(self._on_slider, names="value")
        self.show(r0, c0)

    @property
    def current(self) -> tuple[int, int]:
        """The RoW shown, ``(row, col)``."""
        return self._current

    def _on_slider(self, change) -> None:
        if not self._syncing:
            self.show(self.row.value, self.col.value)

    def show(self, row: int, col: int) -> None:
        """Show RoW ``(row, col)``: move the sliders there and redraw.

        Raises:
            ValueError: if the RoW is outside the grid.
        """
        gh, gw = self.score.shape
        row, col = int(row), int(col)
        if not (0 <= row < gh and 0 <= col < gw):
            raise ValueError(f"RoW ({row}, {col}) is outside the {gh}x{gw} grid")
        self._current = (row, col)
        self._syncing = True
        try:
            self.row.value, self.col.value = row, col
        finally:
            self._syncing = False
        self.image.value = _encode_png(self.render())
        prob = _sigmoid(self.masks[row, col])
        self.label.value = (
            f"RoW (row={row}, col={col}) &middot; score {self.score[row, col]:.4f} &middot; "
            f"mask pixels &gt; {self.threshold}: {int((prob > self.threshold).sum())}"
            f" of {prob.size}"
        )

    def render(self) -> np.ndarray:
        """The current picture as an RGB uint8 array (what :attr:`image` shows)."""
        r, c = self._current
        return render_row(self.masks, self.score, r, c, self.frame_crop, self.threshold)

    def figure(self):
        """A static matplotlib figure of the current RoW, for a page without widgets."""
        r, c = self._current
        return row_mask_panels(self.masks, self.score, r, c, self.frame_crop, self.threshold)


# -- TrackerStepper -------------------------------------------------------------------------

_SCORE_MAPS = {"pscore": "penalised score (max over anchors)",
               "fg": "fg probability (max over anchors)"}


def _titled(img: np.ndarray, title: str) -> np.ndarray:
    from .render import draw_text

    return draw_text(np.ascontiguousarray(img), title, (2, 2), scale=0.4)


def render_step(record, score_map: str = "pscore", threshold: float = 0.5) -> np.ndarray:
    """The stepper's picture of one step: crop | score map | RoW mask | frame.

    * crop: the 255x255 search crop (RGB) with the chosen RoW's 127-px window (yellow) and
      the chosen anchor's decoded box (red);
    * score map: ``max`` over the k anchors of ``record.pscore`` (``"pscore"``: penalty,
      window and all, the value that is arg-maxed) or of ``record.fg`` (``"fg"``: the raw
      foreground probability), the chosen RoW outlined in red;
    * mask: the chosen RoW's mask probabilities (gray) with the ``threshold`` contour;
    * frame: the frame with the pasted mask, the axis-aligned state box and the polygon
      (:func:`~siammask_edu.viz.render.draw_result`), scaled to 255 px high.

    Args:
        record: a :class:`~siammask_edu.inspection.StepRecord`.
        score_map: ``"pscore"`` or ``"fg"``.
        threshold: probability of the contour drawn on the RoW mask (pass the tracker's
            ``seg_thr``; default 0.5).

    Returns:
        np.ndarray[255, W, 3] uint8 RGB.

    Raises:
        ValueError: for an unknown ``score_map``.

    See book/07_online_tracker.py.
    """
    from .render import draw_box, draw_result, score_map_to_rgb

    if score_map not in _SCORE_MAPS:
        raise ValueError(f"score_map must be one of {tuple(_SCORE_MAPS)}, got {score_map!r}")
    d = record.decision
    thr = float(threshold)
    # crop with the RoW window and the chosen box (decoded boxes are relative to the centre)
    crop = cv2.resize(record.crop, (_PANEL, _PANEL), interpolation=cv2.INTER_LINEAR)
    k = _PANEL / record.crop.shape[0]
    x0, y0, x1, y1 = row_window(d.row, d.col)
    crop = draw_box(crop, (x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k), (255, 255, 0), 1)
    bx, by, bw, bh = (float(v) for v in d.box_in_crop)
    c0 = record.crop.shape[0] / 2
    x1b, y1b = (c0 + bx - bw / 2) * k, (c0 + by - bh / 2) * k
    x2b, y2b = x1b + bw * k, y1b + bh * k
    if np.isfinite([x1b, y1b, x2b, y2b]).all():  # an untrained net can decode absurd boxes
        x1b, y1b, x2b, y2b = np.clip([x1b, y1b, x2b, y2b], -_PANEL, 2 * _PANEL)
        if x2b > x1b and y2b > y1b:
            crop = draw_box(crop, (x1b, y1b, x2b - x1b, y2b - y1b), (255, 0, 0), 2)
    # score map, chosen RoW outlined
    values = (record.pscore if score_map == "pscore" else record.fg).max(axis=0)
    sc = np.ascontiguousarray(score_map_to_rgb(values, size=(_PANEL, _PANEL)))
    n = values.shape[0]
    p0 = (round(d.col * _PANEL / n), round(d.row * _PANEL / n))
    p1 = (round((d.col + 1) * _PANEL / n) - 1, round((d.row + 1) * _PANEL / n) - 1)
    cv2.rectangle(sc, p0, p1, (255, 0, 0), 2)
    # the RoW's mask
    if record.row_mask is not None:
        mask = _mask_panel(record.row_mask, thr)
    else:
        mask = np.zeros((_PANEL, _PANEL, 3), np.uint8)
    # the frame
    frame = draw_result(record.frame, record.result, show_score=False)
    h, w = frame.shape[:2]
    frame = cv2.resize(frame, (max(1, round(w * _PANEL / h)), _PANEL),
                       interpolation=cv2.INTER_AREA)
    panels = [_titled(crop, "search crop"),
              _titled(sc, score_map + " max/anchors"),
              _titled(mask, f"RoW ({d.row},{d.col}) mask"),
              _titled(frame, f"frame {record.index}")]
    gap = np.full((_PANEL, _GAP, 3), 255, np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [gap, p]
    return np.concatenate(out, axis=1)


class TrackerStepper:
    """Step through a tracked sequence, one tracking step at a time.

    A slider picks the step; a toggle picks the score map (``"pscore"``: the penalised,
    windowed score that the tracker arg-maxes, the default; ``"fg"``: the raw foreground
    probability); both are the maximum over the k anchors at each RoW. The picture is
    :func:`render_step`: search crop, score map, the chosen RoW's mask, and the frame with
    the pasted mask and polygon. Nothing is recomputed: the records hold every value.

    Args:
        records: :class:`~siammask_edu.inspection.StepRecord` list from
            :func:`~siammask_edu.inspection.trace_tracker` (at least one).
        threshold: mask threshold drawn on the RoW mask (use the tracker's ``seg_thr``).
        score_map: initial map, ``"pscore"`` or ``"fg"``.

    Attributes:
        slider (ipywidgets.IntSlider): the step, 0 .. len(records) - 1.
        score_map (ipywidgets.ToggleButtons): ``"pscore"`` or ``"fg"``.
        image (ipywidgets.Image): PNG of the current view.
        label (ipywidgets.HTML): frame, RoW, anchor, score, penalty, margin, polygon source,
            and LOST when the step's result is lost (``TrackResult.lost``).
        widget (ipywidgets.VBox): what to display (end a notebook cell with it).
        index (int): the step shown.

    In the browser the controls carry stable CSS classes (``CSS_CLASSES``): the box
    ``siammask-stepper``, the slider ``siammask-stepper-step``, the toggle
    ``siammask-stepper-score-map``, the picture ``siammask-stepper-image`` and the text
    ``siammask-stepper-label`` (tests/test_browser_widgets.py drives them).

    Raises:
        ValueError: for no records or an unknown ``score_map``.

    See book/07_online_tracker.py.
    """

    CSS_CLASSES: ClassVar[dict[str, str]] = {
        "widget": "siammask-stepper", "slider": "siammask-stepper-step",
        "score_map": "siammask-stepper-score-map", "image": "siammask-stepper-image",
        "label": "siammask-stepper-label"}

    def __init__(self, records, threshold: float = 0.5, score_map: str = "pscore") -> None:
        import ipywidgets as w

        self.records = list(records)
        if not self.records:
            raise ValueError("TrackerStepper needs at least one StepRecord")
        if score_map not in _SCORE_MAPS:
            raise ValueError(f"score_map must be one of {tuple(_SCORE_MAPS)}, got {score_map!r}")
        self.threshold = float(threshold)
        self._index = 0
        self.slider = w.IntSlider(value=0, min=0, max=len(self.records) - 1, description="step")
        self.score_map = w.ToggleButtons(options=[(v, k) for k, v in _SCORE_MAPS.items()],
                                         value=score_map)
        self.image = w.Image(format="png")
        self.label = w.HTML()
        self.widget = w.VBox([w.HBox([self.slider, self.score_map]), self.image, self.label])
        for name, css in self.CSS_CLASSES.items():
            _with_class(getattr(self, name), css)
        self.slider.observe(lambda ch: self.show(ch["new"]), names="value")
        self.score_map.observe(lambda ch: self.show(self._index), names="value")
        self.show(0)

    @property
    def index(self) -> int:
        """The step shown (position in ``records``)."""
        return self._index

    def show(self, index: int) -> None:
        """Show step ``index``: move the slider there and redraw.

        Raises:
            ValueError: if ``index`` is not a step.
        """
        index = int(index)
        if not 0 <= index < len(self.records):
            raise ValueError(f"step {index} outside 0..{len(self.records) - 1}")
        self._index = index
        if self.slider.value != index:
            self.slider.value = index  # calls show() again through the observer
            return
        self.image.value = _encode_png(self.render())
        r = self.records[index]
        d = r.decision
        self.label.value = (
            f"frame {r.index} &middot; RoW (row={d.row}, col={d.col}) anchor {d.anchor} "
            f"&middot; fg {d.score:.3f} &middot; penalty {d.penalty:.3f} &middot; "
            f"pscore margin {d.margin:.2e} &middot; polygon from {r.step.polygon_source}"
            + (" &middot; <b style='color:#d00'>LOST</b>" if r.result.lost else "")
        )

    def render(self, index: int | None = None) -> np.ndarray:
        """The picture of step ``index`` (default: the current one) as RGB uint8."""
        r = self.records[self._index if index is None else int(index)]
        return render_step(r, self.score_map.value, self.threshold)

    def figure(self, steps=None, size: float = 2.2):
        """A static matplotlib figure of several steps (one row each), for pages without
        widgets.

        Args:
            steps: indices into ``records`` (default: all).
            size: inches per row.

        Returns:
            :class:`matplotlib.figure.Figure`.
        """
        from matplotlib.figure import Figure

        steps = range(len(self.records)) if steps is None else list(steps)
        imgs = [self.render(i) for i in steps]
        aspect = imgs[0].shape[1] / imgs[0].shape[0]
        fig = Figure(figsize=(size * aspect, size * len(imgs)), layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(imgs), 1, squeeze=False)[:, 0])
        for ax, img in zip(axes, imgs):
            ax.imshow(img)
            ax.set_xticks([]), ax.set_yticks([])
        return fig


__all__ = ["RowMaskViewer", "TrackerStepper", "render_row", "render_step"]
