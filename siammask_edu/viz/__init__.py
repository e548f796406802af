"""Drawing and notebook widgets.

* ``render`` — pure functions ``(frame, ...) -> np.ndarray (H, W, 3) uint8`` (RGB);
* ``figures`` — static matplotlib figures (Fig. 8 grids, image strips, tables);
* ``widgets`` — ipywidgets explorers built on them, testable without a browser.
"""
