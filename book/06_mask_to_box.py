# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. From mask to box
#
# **What you will build.** SiamMask predicts a mask, but tracking benchmarks such as VOT
# score a *box*. You will turn real DAVIS masks into the three boxes of paper Fig. 3 —
# *Min-max* (axis-aligned), *MBR* (rotated minimum bounding rectangle) and *Opt* (the
# VOT-2016 optimisation) — pin down the corner order and angle convention of a rotated
# box, recompute the three **oracle** rows of paper Table 1 on two VOT sequences, next
# to the paper's VOT-2016 values, and then its **SiamMask** rows: the three boxes fitted to
# masks that a trained network predicts.
#
# Paper: §3.2 "Box generation", Fig. 3, and §4.1 "How much does the object representation
# matter?" with Table 1.
#
# Symbols as in the book's [glossary](index.md#glossary); where the paper and the
# released code differ, and which side the library follows:
# [paper vs code](paper_vs_code.md).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 3 s
# as a fresh clone runs it (default settings, no `../shared`), 9 s with the
# project's data, 5 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import time

import cv2
import numpy as np
import torch

from siammask_edu import Tracker, box_protocol, boxes, geometry, io, testing
from siammask_edu.config import book_threads, fast_mode
from siammask_edu.metrics import vot
from siammask_edu.paths import davis_sequence, have_davis, have_vot, vot_sequence
from siammask_edu.viz import figures, render

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it

# %% [markdown]
# ## Three real masks
#
# We take the first-frame ground-truth masks of three DAVIS-2016 sequences (480p):
# `blackswan` (a swan seen at an angle), `dog` (long and tilted) and `car-shadow`
# (a car, nearly a rectangle). Annotations are PNGs whose non-zero pixels are the object.
# Frames are read as **RGB** with `io.read_image`. Without DAVIS, three frames of the
# package's `synthetic_ellipse` sample (the ellipse turns as it moves) stand in, and the
# third, the most tilted, plays the part of `dog`.

# %%
with_davis, with_vot = have_davis(), have_vot("bag", "book")
frames, masks = {}, {}
if with_davis:
    names = ["blackswan", "dog", "car-shadow"]
    for name in names:
        frames_dir, annos_dir = davis_sequence(name)
        frames[name] = io.read_image(frames_dir / "00000.jpg")  # (480, 854, 3) RGB
        anno = cv2.imread(str(annos_dir / "00000.png"), cv2.IMREAD_GRAYSCALE)
        masks[name] = anno > 0  # (480, 854) bool
    tilted = "dog"
else:
    sample = testing.book_sequence("dog")  # says that DAVIS is missing
    names = ["ellipse 0", "ellipse 7", "ellipse 14"]  # turned by 0, 21 and 42 degrees
    for name in names:
        t = int(name.split()[1])
        frames[name] = np.ascontiguousarray(sample.frames[t][:, :, ::-1])  # RGB
        masks[name] = sample.masks[t]
    tilted = names[2]
for name in names:
    n_blobs = cv2.connectedComponents(masks[name].astype(np.uint8))[0] - 1
    print(f"{name:10s} frame {frames[name].shape} | mask {masks[name].sum():6d} px, "
          f"{n_blobs} blob(s)")
    assert masks[name].shape == frames[name].shape[:2] and n_blobs == 1

# %% [markdown]
# ## Min-max, by hand
#
# The *Min-max* box is the axis-aligned rectangle spanned by the extreme object pixels.
# The library works on the mask's **contour points** (`cv2.findContours`), in OpenCV's
# pixel-index coordinates: pixel (row $i$, column $j$) is the point $(j, i)$. For a
# single-blob mask the extreme contour points are the extreme pixels, so `np.nonzero`
# gives the same box. Corners go top-left, top-right, bottom-right, bottom-left.

# %%
def minmax_ours(mask):
    rows, cols = np.nonzero(mask)
    x1, x2, y1, y2 = cols.min(), cols.max(), rows.min(), rows.max()
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)


for name in names:
    testing.compare(f"min-max {name}", minmax_ours(masks[name]),
                    boxes.fit_box(masks[name], "minmax"), atol=0, rtol=0)

# %% [markdown]
# ## MBR and Opt
#
# *MBR* is `cv2.minAreaRect` on the contour points, turned into corners by
# `cv2.boxPoints` — exactly what the released tracker does every frame. *Opt* searches
# the rotated rectangle that best trades off "object left outside" against "background
# inside" (`boxes.vot2016_cost`, our reading of the VOT-2016 automatic box generation),
# with Nelder–Mead started from the MBR. The paper calls it slow (§4.1); let us time it.

# %%
fits, seconds = {}, {}
for name in names:
    for strategy in boxes.STRATEGIES:
        t0 = time.perf_counter()
        fits[name, strategy] = boxes.fit_box(masks[name], strategy)
        seconds[strategy] = seconds.get(strategy, 0.0) + time.perf_counter() - t0
for strategy, s in seconds.items():
    print(f"{strategy:6s}: {1000 * s / len(names):7.2f} ms per mask")
assert seconds["opt"] > seconds["mbr"]
print(f"On this run Opt takes {seconds['opt'] / seconds['mbr']:.0f}x the time of MBR "
      f"and {seconds['opt'] / seconds['minmax']:.0f}x that of Min-max.")

# %% [markdown]
# Paper Fig. 3, on real masks: the mask in yellow, *Min-max* in red, *MBR* in green and
# *Opt* in blue.

# %%
COLORS = {"minmax": (255, 0, 0), "mbr": (0, 200, 0), "opt": (40, 80, 255)}
panels = []
for name in names:
    img = render.overlay_mask(frames[name], masks[name], (255, 220, 0), 0.45)
    for strategy in boxes.STRATEGIES:
        img = render.draw_polygon(img, fits[name, strategy], COLORS[strategy], 3)
    panels.append(img)
figures.image_strip(panels, [f"{n}: Min-max / MBR / Opt" for n in names], size=4.0)

# %% [markdown]
# ## How different are they?
#
# IoU between the boxes, and between each box and the mask itself (the mask as the
# polygon of its contour). All IoUs here are **analytic**: shapely intersects the exact
# polygons (`boxes.rotated_iou`), with no pixel grid in between.

# %%
contours = {n: boxes.largest_contour(masks[n]) for n in names}
print(f"{'sequence':10s} | {'mm-mbr':>6s} {'mm-opt':>6s} {'mbr-opt':>7s} | "
      f"IoU with mask: {'mm':>5s} {'mbr':>5s} {'opt':>5s}")
with_mask = {}
for n in names:
    mm, mbr, opt = (fits[n, s] for s in boxes.STRATEGIES)
    with_mask[n] = [boxes.rotated_iou(b, contours[n]) for b in (mm, mbr, opt)]
    print(f"{n:10s} | {boxes.rotated_iou(mm, mbr):6.3f} {boxes.rotated_iou(mm, opt):6.3f} "
          f"{boxes.rotated_iou(mbr, opt):7.3f} |                {with_mask[n][0]:5.3f} "
          f"{with_mask[n][1]:5.3f} {with_mask[n][2]:5.3f}")
    # both enclosing boxes contain the mask, and MBR never has more area than Min-max
    assert box_protocol.polygon_area(mbr) <= box_protocol.polygon_area(mm) + 1e-3
    assert with_mask[n][1] >= with_mask[n][0] - 1e-9

# %% [markdown]
# MBR has the least area of all enclosing rectangles, so its IoU with the mask is at
# least Min-max's (both contain the mask). *Opt* does not have to contain the mask: it
# gives up a little of the object (tips of wings, a tail) for a lot less background, so
# its IoU with the mask is usually the highest of the three — the ordering of the
# SiamMask rows of Table 1.
#
# ## Corner order and angle
#
# A rotated box is a polygon of 4 corners, `np.ndarray (4, 2)` of `(x, y)` in frame
# pixels. `fit_box(..., "mbr")` keeps OpenCV's `boxPoints` order (as released);
# `boxes.order_corners` puts any rectangle in the library's order: **clockwise on
# screen** (image y points down), starting at the top-left corner.
#
# As parameters the library uses `(cx, cy, w, h, angle)` with the angle in **degrees,
# counter-clockwise on screen**, in $(-90, 90]$ (detectron2's `RotatedBoxes`
# convention); `w` is the side that makes that angle with the x axis.
# `cv2.minAreaRect` has its own angle convention, and it has changed between OpenCV
# versions (4.5.1 moved it from $[-90, 0)$ to $(0, 90]$), so the library never passes
# OpenCV's angle on: it works from the corners.

# %%
mbr = fits[tilted, "mbr"]
(ocx, ocy), (ow, oh), oangle = cv2.minAreaRect(contours[tilted])
cx, cy, w, h, angle = boxes.polygon_to_cxcywha(mbr)
print("boxPoints order :", np.round(mbr.astype(float), 1).tolist())
print("library order   :",
      np.round(boxes.order_corners(mbr).astype(float), 1).tolist())
print(f"cv2.minAreaRect : size ({ow:.1f}, {oh:.1f}), angle {oangle:.2f} "
      f"(OpenCV {cv2.__version__})")
print(f"polygon_to_cxcywha: ({cx:.1f}, {cy:.1f}, {w:.1f}, {h:.1f}, {angle:.2f} deg ccw)")
testing.compare("round trip (as point sets)",
                boxes.order_corners(boxes.cxcywha_to_polygon((cx, cy, w, h, angle))),
                boxes.order_corners(mbr), atol=1e-3)

# %% [markdown]
# Check the convention on a rectangle we draw ourselves: 120 × 50 px turned 30°
# counter-clockwise on screen (its right end goes *up*, to smaller y). We rasterise it
# into a mask and fit the MBR. One rectangle has two parameterisations,
# $(w, h, a) \equiv (h, w, a \pm 90°)$, depending on which side is called `w`;
# `canonical` picks the one with $w \ge h$ before we compare.

# %%
truth = (200.0, 150.0, 120.0, 50.0, 30.0)
corners = boxes.cxcywha_to_polygon(truth)
print("right-hand corners (TR, BR):", np.round(corners[1:3].astype(float), 1).tolist(),
      "| left-hand (TL, BL):", np.round(corners[[0, 3]].astype(float), 1).tolist())
assert corners[1:3, 1].mean() < corners[[0, 3], 1].mean()  # right end higher on screen
drawn = np.zeros((300, 400), np.uint8)
cv2.fillPoly(drawn, [np.round(corners).astype(np.int32)], 1)


def canonical(cx, cy, w, h, a):
    """The parameterisation with w >= h, angle in (-90, 90]."""
    if w < h:
        w, h, a = h, w, a + 90.0
    a = a - 180.0 if a > 90.0 else (a + 180.0 if a <= -90.0 else a)
    return np.array([cx, cy, w, h, a])


fitted = boxes.polygon_to_cxcywha(boxes.fit_box(drawn, "mbr"))
print("fitted (cx, cy, w, h, angle):", np.round(fitted, 2),
      "-> canonical", np.round(canonical(*fitted), 2))
# fillPoly also fills the pixels the edges pass through: sides come out ~1 px longer
testing.compare("fitted vs drawn (cx, cy, w, h, a)", canonical(*fitted), np.array(truth),
                atol=1.5)
assert boxes.rotated_iou(boxes.cxcywha_to_polygon(fitted), corners) > 0.95

# %% [markdown]
# ## Table 1's oracles, recomputed
#
# Table 1 asks how much the *representation* limits a tracker. Three **oracles** know
# the per-frame ground truth (VOT's rotated boxes) and output the best box of each kind
# (`siammask_edu.box_protocol`):
#
# 1. *Fixed aspect ratio* (SiamFC): axis-aligned, the ground truth's area and centre, the
#    aspect ratio of the first frame;
# 2. *Min-max* (SiamRPN): the axis-aligned box enclosing the rotated ground truth;
# 3. *MBR* (SiamMask): the rotated minimum bounding rectangle of the ground truth.
#
# We read the two VOT sequences we have, `bag` and `book`
# (`groundtruth.txt`: 8 numbers per line, the 4 corners of a rotated box).

# %%
if with_vot:
    gts = {s: vot.read_trajectory(vot_sequence(s) / "groundtruth.txt") for s in ("bag", "book")}
    for s, g in gts.items():
        print(f"{s}: {len(g)} frames, first box {np.round(g[0], 1).tolist()}")
        assert all(r.size == 8 for r in g)
else:
    testing.missing_data_note("vot", "Table 1 needs the VOT sequences bag and book: this "
                              "section is skipped")

# %% [markdown]
# The three oracle boxes on one frame of `book` (ground truth in white):

# %%
if with_vot:
    seq = "book"
    k = len(gts[seq]) // 2
    frame = io.read_image(io.list_images(vot_sequence(seq) / "color")[k])
    gt = gts[seq][k]
    oracle_boxes = {"Fixed a.r.": box_protocol.oracle_fixed_aspect(gt, gts[seq][0]),
                    "Min-max": box_protocol.oracle_minmax(gt),
                    "MBR": box_protocol.oracle_mbr(gt)}
    panels = []
    for (label, b), color in zip(oracle_boxes.items(), COLORS.values()):
        img = render.draw_polygon(frame, gt, (255, 255, 255), 2)
        img = render.draw_polygon(img, b, color, 2)
        panels.append(img)
        print(f"{label:10s} IoU {box_protocol.polygon_iou(b, gt):.3f}")
    figures.image_strip(panels, [f"{seq} frame {k}: {n} oracle" for n in oracle_boxes], size=3.6)

# %% [markdown]
# The fixed-aspect oracle, derived by hand for that frame and checked against the
# library: the area is the shoelace formula, the aspect ratio that of the first frame's
# min/max extent (the axis-aligned box a tracker is started with).

# %%
if with_vot:
    p, p0 = gt.reshape(4, 2), gts[seq][0].reshape(4, 2)
    area = 0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))
    r = np.ptp(p0[:, 0]) / np.ptp(p0[:, 1])
    w_fa, h_fa = np.sqrt(area * r), np.sqrt(area / r)
    (cxo, cyo) = p.mean(0)
    fixed_ours = np.array([[cxo - w_fa / 2, cyo - h_fa / 2], [cxo + w_fa / 2, cyo - h_fa / 2],
                           [cxo + w_fa / 2, cyo + h_fa / 2], [cxo - w_fa / 2, cyo + h_fa / 2]])
    testing.compare("fixed-aspect oracle", fixed_ours, oracle_boxes["Fixed a.r."], atol=1e-9)

# %% [markdown]
# **Measures.** The paper reports "mean IOU and Average Precision (AP)@{0.5, 0.7} IOU".
# With one box per frame and no confidence ranking there is no precision–recall curve to
# average, so we read "mAP@t" as the **fraction of frames with IoU ≥ t**
# (`box_protocol.box_metrics`; the reading is ours). IoUs are **analytic** (shapely): the
# oracles and the ground truth are exact polygons, so nothing should depend on a pixel
# grid. VOT's own rasterised overlap (`iou="vot"`) is shown too; frames of both
# sequences are pooled.

# %%
if with_vot:
    tables = {iou: box_protocol.oracle_table(list(gts.values()), iou)
              for iou in ("analytic", "vot")}
    per_seq = {s: box_protocol.oracle_table([g]) for s, g in gts.items()}
    print(f"{'oracle':18s} | {'ours: bag+book, analytic':>24s} | {'VOT raster':>21s} | "
          f"{'paper: VOT-2016':>21s}")
    print(f"{'':18s} | {'mIoU  mAP.5  mAP.7':>24s} | {'mIoU  mAP.5  mAP.7':>21s} | "
          f"{'mIoU  mAP.5  mAP.7':>21s}")
    for name in box_protocol.ORACLES:
        cells = [" ".join(f"{100 * tables[iou][name][m]:5.1f}" for m in ("mIoU", "mAP@0.5",
                                                                          "mAP@0.7"))
                 for iou in ("analytic", "vot")]
        paper = " ".join(f"{v:5.1f}" for v in box_protocol.PAPER_TABLE1[name])
        print(f"{name:18s} | {cells[0]:>24s} | {cells[1]:>21s} | {paper:>21s}")
    for s in gts:
        print(f"  {s}: " + ", ".join(f"{n.split()[0]} {100 * per_seq[s][n]['mIoU']:.1f}"
                                     for n in box_protocol.ORACLES))
    ours = tables["analytic"]
    assert ours["MBR Oracle"]["mIoU"] > 0.999  # VOT's ground truth is a rectangle
    assert ours["MBR Oracle"]["mIoU"] > max(ours["Min-max Oracle"]["mIoU"],
                                            ours["Fixed a.r. Oracle"]["mIoU"])
    fixed_wins = {s: t["Fixed a.r. Oracle"]["mIoU"] > t["Min-max Oracle"]["mIoU"]
                  for s, t in per_seq.items()}
    assert fixed_wins == {"bag": True, "book": False}  # the point made below

# %% [markdown]
# What to make of it — two sequences, not the 60 of VOT-2016, so read the numbers as an
# illustration, not a reproduction:
#
# * **MBR is (almost) perfect here, 84 % in the paper.** VOT's ground truth is itself a
#   rotated rectangle, so its minimum bounding rectangle is itself (IoU 1 up to
#   OpenCV's float32). The paper's 84.07 % must come from a protocol it does not spell
#   out — §4.1 evaluates on "randomly cropped search patches" with shifts and scale
#   changes; the oracle values were probably computed there, at crop resolution. The
#   gap between the representations is what carries over, not the absolute values.
# * **Fixed aspect vs Min-max depends on the sequence.** In `bag` the object keeps its
#   shape and the fixed-aspect oracle wins (it keeps the true area, Min-max inflates a
#   rotated box); in `book` the book turns and changes its aspect, and the fixed aspect
#   ratio loses. On VOT-2016 as a whole the paper finds Min-max ahead by 4 points.
# * The analytic and the rasterised IoU differ by about a point at most: for boxes of
#   ~100 px the pixel grid hardly matters. It would for small objects.
#
# ## Boxes from predicted masks: the SiamMask rows
#
# The SiamMask rows of Table 1 fit the three boxes to the mask the **network predicts**,
# so they need trained weights: we use the shipped SiamMask-Lite (chapter 9; an
# EfficientNet-Lite0 SiamMask trained by this project, never on VOT). The book's seeded
# checkpoint would not do — its masks follow no object; `testing.lite_or_seeded` falls
# back to it only in a build without the lite weights, and then says so and skips the
# checks. First one frame by hand, the `book` frame from above: start the tracker on the
# ground truth of frame 0 (`init_polygon`), put its state on the ground truth of that
# frame (`set_target`: the search crop is centred on the book), track once and fit the
# three boxes to the predicted mask.

# %%
if with_vot:
    net, trained = testing.lite_or_seeded()
    tracker = Tracker(net, "vot")
    first = io.read_image(io.list_images(vot_sequence(seq) / "color")[0])
    tracker.init_polygon(first, gts[seq][0])
    cxk, cyk, wk, hk = geometry.vot_polygon_to_cxcywh(gt)
    tracker.set_target((cxk, cyk), (wk, hk))
    res = tracker.track(frame)
    predicted = {s: boxes.fit_box(res.mask, s, tracker.config.min_polygon_area)
                 for s in boxes.STRATEGIES}
    pred_iou = {s: 0.0 if b is None else box_protocol.polygon_iou(b, gt)
                for s, b in predicted.items()}
    print(f"{seq} frame {k}: score {res.score:.3f}, mask {res.mask.sum()} px | IoU with the "
          "ground truth: " + ", ".join(f"{s} {v:.3f}" for s, v in pred_iou.items()))
    if trained:
        assert min(pred_iou.values()) > 0.5  # shipped SiamMask-Lite: 0.60 / 0.73 / 0.89

# %%
if with_vot:
    img = render.overlay_mask(frame, res.mask, (255, 220, 0), 0.45)
    img = render.draw_polygon(img, gt, (255, 255, 255), 2)
    for strategy, b in predicted.items():
        if b is not None:
            img = render.draw_polygon(img, b, COLORS[strategy], 2)
    (x0, y0), (x1, y1) = gt.reshape(4, 2).min(0) - 60, gt.reshape(4, 2).max(0) + 60
    zoom = img[max(0, int(y0)):int(y1), max(0, int(x0)):int(x1)]  # around the book
    figures.image_strip([img, zoom], [f"{seq} frame {k}: predicted mask (yellow)",
                                      "Min-max / MBR / Opt, ground truth (white)"], size=3.6)

# %% [markdown]
# `box_protocol.table1` runs §4.1's protocol on many frames: for each, a search crop
# around the ground truth, shifted by up to ±16 crop pixels and scaled by
# $2^{1 \pm 0.25}$ (seeded), one tracking step, the three boxes fitted to the mask — and
# the oracles on the same frames. In fast mode 5 frames per sequence, else 60.

# %%
if with_vot:
    n_per_seq = 5 if fast_mode() else 60
    table = box_protocol.table1(net, ["bag", "book"], frames_per_sequence=n_per_seq, seed=0)
    print(f"{'row':18s} | {'ours: mIoU  mAP.5  mAP.7':>24s} | {'paper: VOT-2016':>21s}")
    for row in table:
        ours = " ".join(f"{100 * row[m]:5.1f}" for m in ("mIoU", "mAP@0.5", "mAP@0.7"))
        paper = " ".join(f"{v:5.1f}" for v in row["paper"])
        print(f"{row['row']:18s} | {ours:>24s} | {paper:>21s}")
    print(f"{table[0]['n_frames']} frames; frames without a mask blob: "
          f"{table[-1]['n_fallback']}")
    siammask_rows = {row["row"]: row for row in table
                     if row["row"] in box_protocol.SIAMMASK_ROWS}
    assert set(siammask_rows) == set(box_protocol.SIAMMASK_ROWS)
    if trained:
        # shipped SiamMask-Lite, mIoU of Min-max / MBR / Opt: 65.3 / 68.2 / 72.1 on the 10
        # frames of fast mode (the base-stage weights without refinement: 66.4 / 66.9 / 68.2)
        assert all(row["mIoU"] > 0.5 and row["n_fallback"] == 0
                   for row in siammask_rows.values())

# %% [markdown]
# On two sequences, with a small network trained on little data, read the rows as an
# illustration. Two comparisons matter: how the three SiamMask rows rank among
# themselves, and where they fall against the oracles. The cell below states both from
# this run's numbers.

# %%
if with_vot and trained:
    row = {r["row"]: 100 * r["mIoU"] for r in table}
    mm, mbr, opt = (row[f"SiamMask-{s}"] for s in ("Min-max", "MBR", "Opt"))
    paper_mm, paper_mbr, paper_opt = (box_protocol.PAPER_TABLE1[f"SiamMask-{s}"][0]
                                      for s in ("Min-max", "MBR", "Opt"))
    print(f"SiamMask rows, mIoU of Min-max / MBR / Opt: {mm:.1f} / {mbr:.1f} / {opt:.1f} "
          f"(paper, VOT-2016: {paper_mm:.1f} / {paper_mbr:.1f} / {paper_opt:.1f}).")
    print("Ranking: " + ("MBR above Min-max and Opt above MBR, as in the paper."
                         if mm < mbr < opt else "not the paper's Min-max < MBR < Opt."))
    for oracle in box_protocol.ORACLES:
        beaten = [s for s, v in (("Min-max", mm), ("MBR", mbr), ("Opt", opt))
                  if v > row[oracle]]
        print(f"{oracle} ({row[oracle]:.1f}): "
              + (f"exceeded by SiamMask-{', SiamMask-'.join(beaten)}" if beaten
                 else "above all three SiamMask rows"))
    paper_rows = {name: box_protocol.PAPER_TABLE1[name][0] for name in box_protocol.ORACLES}
    print("In the paper every oracle is above every SiamMask row: "
          f"{min(paper_rows.values()) > paper_opt}.")
    assert mm < mbr < opt  # the ranking the text below relies on
    assert opt < row["MBR Oracle"]  # the MBR oracle is 100 here: never reached
    if not fast_mode():  # the text below: on all 120 frames MBR and Opt beat both
        assert min(mbr, opt) > max(row["Fixed a.r. Oracle"], row["Min-max Oracle"])
    print(f"On '{seq}' frame {k} above: MBR {pred_iou['mbr']:.2f} and Opt "
          f"{pred_iou['opt']:.2f} against {pred_iou['minmax']:.2f} for the upright Min-max box.")
elif with_vot:
    print("seeded checkpoint (random weights): the SiamMask rows say nothing about SiamMask")

# %% [markdown]
# The ranking Min-max < MBR < Opt is the paper's. The comparison with the oracles need not
# be: in the paper even the weakest oracle (fixed aspect ratio) is above SiamMask-Opt,
# while here the lines above say which oracles this run's SiamMask rows exceed (with the
# shipped weights on the full 120 frames, MBR and Opt exceed both axis-aligned oracles).
# That is no contradiction: an oracle bounds only its own representation. The
# fixed-aspect and Min-max oracles are the best *axis-aligned* boxes, and a rotated box
# fitted to a good mask can beat them where the target is tilted, as the book is. Only the
# MBR oracle bounds the rotated boxes; it is VOT's own ground truth here (mIoU 100) and
# stays out of reach. Two sequences cannot say more.
#
# The ranking needs refined masks. MBR and Opt can only recover a rotation that the mask
# has, and the lite model's 63×63 head masks, before its refine stage was trained, were
# blobs whose outline carried little of it: with those weights (not shipped; measured on
# fast mode's 10 frames when the base stage finished) the three boxes came out nearly
# equal, 66.4 / 66.9 / 68.2. The `book` frame above shows the difference: the book is
# tilted, and the refined mask's rotated boxes follow it (the IoUs printed above).
#
# ## Recap
#
# * *Min-max* = extreme contour points; *MBR* = `cv2.minAreaRect` + `cv2.boxPoints`
#   (released); *Opt* = a rotated rectangle optimised for the VOT-2016 cost, far slower
#   (this run's factor is printed in "MBR and Opt").
# * A rotated box is 4 corners `(4, 2)`; the library's order is clockwise on screen from
#   the top-left; as parameters `(cx, cy, w, h, angle)` with the angle in degrees,
#   counter-clockwise on screen (never OpenCV's angle).
# * Table 1's oracles: fixed aspect (SiamFC), Min-max (SiamRPN), MBR (SiamMask); mIoU and
#   "mAP@t" = fraction of frames with IoU ≥ t, analytic IoU.
# * The SiamMask rows box a *predicted* mask, so they need trained weights (SiamMask-Lite
#   here); `box_protocol.table1` runs the paper's random-crop protocol.
#
# ## Exercises
#
# 1. Add a fourth oracle: the axis-aligned box with the ground truth's *area*, centre and
#    **per-frame** aspect ratio of its min/max box. Where does it fall between rows 1
#    and 2?
# 2. Rasterise each VOT ground truth into a mask (`cv2.fillPoly`) at 1/4 resolution,
#    fit the MBR to that mask and scale it back. How far does the MBR oracle drop? Does
#    it approach the paper's 84 %?
# 3. Change `alpha` of the *Opt* cost (`boxes.fit_box(mask, "opt", alpha=...)`) on the
#    blackswan mask. Which alpha maximises the IoU with the mask?
# 4. Take a car-shadow mask from a later frame with more than one blob. Which blob does
#    `fit_box` use, and what would `minmax_ours` return?
