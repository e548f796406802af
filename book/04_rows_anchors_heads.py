# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. RoWs, anchors and the three heads
#
# **What you will build.** You will read the three outputs of SiamMask at every RoW of the
# 25×25 grid: the score (its `[bg×5, fg×5]` channel layout and softmax), the box (anchors
# and deltas, decoded into crop pixels) and the mask (one 63×63 mask per RoW, paper Fig. 8),
# and explore the masks with a small widget. The crops are real: the tracker's exemplar and
# search crops of DAVIS `car-shadow`, equal bit for bit to the released tracker's own. The
# layout is checked on the released network; the outputs are read on a trained one,
# SiamMask-Lite.
#
# Symbols as in the book's [glossary](index.md#glossary); where the paper and the
# released code differ, and which side the library follows:
# [paper vs code](paper_vs_code.md).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 4 s
# as a fresh clone runs it (default settings, no `../shared`), 4 s with the
# project's data, 5 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import json
import warnings

import cv2
import numpy as np
import torch

from siammask_edu import geometry, testing
from siammask_edu.config import TrackerConfig, book_threads
from siammask_edu.paths import fixtures_dir, have_fixtures
from siammask_edu.viz import figures, widgets

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it

# %% [markdown]
# ## The tracker's crops
#
# The tracker starts from the box of the first annotation (`cv2.boundingRect`, the
# released DAVIS protocol), cuts the exemplar of frame 0 around it and the search crop of
# frame 1 around the same centre, with the side $s_x$ of chapter 7 (the search region in
# frame pixels; [glossary](index.md#glossary)), padding with the mean
# colour of frame 0. The crops are float tensors `(1, 3, H, W)` with BGR values in 0…255,
# exactly what the network eats. We flip them to RGB to look at them. (Without DAVIS,
# `testing.book_sequence` gives the shipped synthetic ellipse instead, and says so.)

# %%
seq = testing.book_sequence("car-shadow", n_frames=2)
x0, y0, w0, h0 = seq.box
center, size = (x0 + w0 / 2, y0 + h0 / 2), (w0, h0)  # the start box, centre and size
avg_chans = np.mean(seq.frames[0], axis=(0, 1))  # BGR padding colour, as the tracker
_, s_x = geometry.search_region(size)  # side of the search square, frame px
z = geometry.crop_subwindow(seq.frames[0], center, 127, geometry.exemplar_crop_size(size),
                            avg_chans)  # (1, 3, 127, 127) BGR 0..255
x = geometry.crop_subwindow(seq.frames[1], center, 255, s_x, avg_chans)  # frame 1
x_rgb = np.ascontiguousarray(x[0].numpy().transpose(1, 2, 0)[:, :, ::-1].astype(np.uint8))
z_rgb = z[0].numpy().transpose(1, 2, 0)[:, :, ::-1].astype(np.uint8)
print(seq.name, "| start box", seq.box, "| s_x =", s_x, "px | z", tuple(z.shape), "| x",
      tuple(x.shape))
figures.image_strip([z_rgb, x_rgb], ["exemplar z (frame 0)", "search x (frame 1)"])

# %% [markdown]
# The reference fixtures hold a run of the released SiamMask *base* model on `car-shadow`
# (see `fixtures/README.md`): its exemplar crop of frame 0, its search crop of frame 1, and
# what its network answered. Our crops are the released tracker's, bit for bit:

# %%
rec = None
if seq.davis and have_fixtures("track_car-shadow_base.npz"):
    rec = np.load(fixtures_dir() / "track_car-shadow_base.npz")
    meta = json.loads(str(rec["meta"]))
    assert tuple(meta["init_target_pos"]) == center and tuple(meta["init_target_sz"]) == size
    testing.compare("exemplar crop vs released", z, rec["z_crop"], atol=0, rtol=0)
    testing.compare("search crop vs released", x, rec["x_crops"], atol=0, rtol=0)
else:
    testing.skipped_reference_check(
        "our exemplar and search crops of car-shadow equal the released tracker's bit for bit")

# %% [markdown]
# ## The base model from the sharp checkpoint
#
# The base model (63×63 masks, no refinement) is the sharp model without its
# `refine_model.*` weights: the sharp file holds the complete base network, including the
# 3969-channel mask head that refinement makes redundant at tracking time. So we load the
# book's checkpoint with `preset="base"`. The loader accepts this strictly — every base
# weight must be present with the right shape — and drops the 32 refinement tensors with a
# warning, which we print. (A loader that refused those extra keys would need
# `strict=False`, which would also hide genuinely missing weights.)
#
# :::{warning}
# Random weights in the released layout (chapter 1): the algorithm is real, the outputs
# do not describe the car. We use this network to check the layout against the released
# implementation, then switch to trained weights to read the outputs.
# :::

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model, recorded = testing.released_layout_network(preset="base")
for w in caught:
    print("loader warning:", w.message)
print(model.config.name, "| refine module:", model.refine)
assert model.refine is None and model.config.mask_size == 63

# %% [markdown]
# One template, one track. `track` evaluates the dense mask head for the base model:

# %%
with torch.no_grad():
    out = model.track(x, model.template(z))
score, delta, mask_logits = out.score, out.delta, out.mask_logits
print("score", tuple(score.shape), "| delta", tuple(delta.shape),
      "| mask_logits", tuple(mask_logits.shape))
assert tuple(mask_logits.shape) == (1, 63 * 63, 25, 25)

# %% [markdown]
# Before reading anything, check that these are the released network's numbers on the same
# crops (tolerance 1e-4: thread counts change float summation order, see the fixtures'
# README):

# %%
if rec is not None and recorded:
    testing.compare("cls vs released", score[0], rec["cls"][1], atol=1e-4)
    testing.compare("loc vs released", delta[0], rec["loc"][1], atol=1e-4)
    mr, mc = (int(v) for v in rec["mask_pos"][1])  # the RoW the released tracker chose
    testing.compare(f"mask at RoW ({mr},{mc})", mask_logits[0, :, mr, mc].reshape(63, 63),
                    rec["mask_logit"][1], atol=1e-4)
else:
    testing.skipped_reference_check("our base network's score, box and 63x63 mask outputs "
                                    "equal the released network's on the same crops (1e-4)")

# %% [markdown]
# ## Trained weights, to read the outputs
#
# The layout is the released one; what the numbers *say* needs a trained network. The
# package ships **SiamMask-Lite** (chapter 9): an EfficientNet-Lite0 backbone and
# 128-channel heads in place of ResNet-50 and 256, but the same crops, the same 25×25
# RoWs, the same `[bg×5, fg×5]` score, 5-anchor box and 63×63 mask layouts — so everything
# below reads its outputs exactly as it would read the released ones. We run it on the
# same two crops; we ask for the dense mask head explicitly, since a model with a
# refinement module would skip it. Without the weights (`testing.lite_or_seeded` says
# so) the seeded base network stays, and the checks on the car are skipped.

# %%
net, trained = testing.lite_or_seeded(preset="base")
with torch.no_grad():
    out = net.track(x, net.template(z), mask_head=True)
score, delta, mask_logits = out.score, out.delta, out.mask_logits  # from here on: net's
print(net.config.name, "| score", tuple(score.shape), "| delta", tuple(delta.shape),
      "| mask_logits", tuple(mask_logits.shape))
assert tuple(score.shape) == (1, 10, 25, 25) and tuple(delta.shape) == (1, 20, 25, 25)
assert tuple(mask_logits.shape) == (1, 63 * 63, 25, 25)

# %% [markdown]
# To check what it finds we need the car in the search crop. Cutting the annotation of
# frame 1 with the same crop as the frame gives the car's pixels in the crop:

# %%
anno1 = np.repeat(seq.masks[1][..., None].astype(np.uint8) * 255, 3, axis=2)  # 0 or 255
car_x = geometry.crop_subwindow(anno1, center, 255, s_x, (0, 0, 0), out="numpy")
car_x = car_x[..., 0] > 127  # (255, 255) bool: the car's pixels in the crop
ys, xs = np.nonzero(car_x)
car_box = (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
print(f"s_x = {s_x} px | the car in the crop: {car_x.sum()} px, box xywh {car_box}")

# %% [markdown]
# ## The score: `[bg × 5, fg × 5]`
#
# Each RoW carries $k = 5$ anchors, and each anchor two logits. The released layout puts
# the five **background** logits first, then the five **foreground** logits: channel $a$
# is anchor $a$'s background, channel $5 + a$ its foreground. A softmax over each
# (bg, fg) pair gives the probability that the anchor's box holds the target.

# %%
k = 5
logits = score[0].view(2, k, 25, 25)  # (bg/fg, anchor, row, col)
p_fg = logits.softmax(dim=0)[1]  # (5, 25, 25)
testing.compare("softmax of a pair", p_fg[2, 12, 12],
                torch.sigmoid(score[0, 5 + 2, 12, 12] - score[0, 2, 12, 12]), atol=1e-6)
print("P(fg) per anchor, range:", float(p_fg.min()), "...", float(p_fg.max()))

# %% [markdown]
# Reading the channels as interleaved pairs `[bg0, fg0, bg1, fg1, …]` — a plausible
# guess — gives different numbers without any error, which is why the layout is worth a
# test:

# %%
p_wrong = score[0].view(k, 2, 25, 25).softmax(dim=1)[:, 1]
print("max |difference| with the wrong layout:", float((p_wrong - p_fg).abs().max()))
assert not torch.allclose(p_wrong, p_fg)

# %% [markdown]
# The tracker flattens the scores anchor-major, $q = a \cdot 625 + r \cdot 25 + c$, and
# unravels the winner in `(5, 25, 25)` order:

# %%
flat = p_fg.reshape(-1)  # (3125,) index a*625 + r*25 + c
n_best = int(flat.argmax())
a_best, r_best, c_best = (int(v) for v in np.unravel_index(n_best, (k, 25, 25)))
assert n_best == a_best * 625 + r_best * 25 + c_best
print(f"best: anchor {a_best}, RoW ({r_best}, {c_best}), P(fg) = {float(flat[n_best]):.4f}")
figures.image_strip([p_fg[a] for a in range(k)], [f"P(fg), anchor {a}" for a in range(k)],
                    cmap="viridis", vmin=0, vmax=1, size=2.0)

# %% [markdown]
# The trained network's foreground is a compact blob of RoWs around the car, and it
# prefers the anchors whose shape fits a car seen from the side: the square and wide
# anchors 0–2 are sure, the tall anchors 3 and 4 much less so.
#
# (The tracker does not take this raw arg-max: it multiplies by a penalty on size and
# ratio changes and mixes in a cosine window first. That belongs to the online tracker,
# chapter 7.)
#
# ## Anchors
#
# An anchor is a reference box attached to a RoW; the box head predicts how to move and
# stretch it. SiamMask uses the SiamRPN anchors: one scale (8) and five aspect ratios
# $r = h/w \in \{0.33, 0.5, 1, 2, 3\}$, all of area about $64^2$ crop pixels. The released
# code truncates to integers on a grid of 8: $w_s = \lfloor\sqrt{64/r}\rfloor$,
# $h_s = \lfloor w_s r\rfloor$, then $(w, h) = 8\,(w_s, h_s)$. Anchor centres are the RoW
# centres, relative to the centre of the search crop: $-96 + 8c$ and $-96 + 8r$.

# %%
cfg = TrackerConfig.davis()
shapes = []
for ratio in cfg.ratios:
    ws = int(np.sqrt(cfg.total_stride ** 2 / ratio))
    hs = int(ws * ratio)
    shapes.append((ws * 8, hs * 8))  # scale 8
print("anchor (w, h):", shapes)
assert shapes == [(104, 32), (88, 40), (64, 64), (40, 80), (32, 96)]

g = cfg.score_size  # side of the RoW grid, 25
offsets = -(g // 2) * cfg.total_stride + cfg.total_stride * np.arange(g)  # -96 ... 96
anchors_ours = np.zeros((k, g, g, 4), np.float32)  # (a, row, col, [cx, cy, w, h])
anchors_ours[..., 0] = offsets[None, None, :]  # cx from the column
anchors_ours[..., 1] = offsets[None, :, None]  # cy from the row
anchors_ours[..., 2:] = np.array(shapes, np.float32)[:, None, None, :]
anchors_ours = anchors_ours.reshape(-1, 4)  # (3125, 4), row a*625 + r*25 + c
print("row 0:", anchors_ours[0], "| row 1562:", anchors_ours[1562])

# %% [markdown]
# Check the table against the released tracker's own (stored in the fixture) and, when it
# is installed, against the library's `siammask_edu.anchors`:

# %%
if rec is not None:
    testing.compare("anchors vs released", anchors_ours, rec["anchor"], atol=0, rtol=0)
else:
    testing.skipped_reference_check("our anchor table equals the released tracker's exactly")
try:
    from siammask_edu import anchors as lib_anchors
except ImportError:
    lib_anchors = None
if lib_anchors is None:
    print("siammask_edu.anchors is not available: library check skipped")
else:
    lib_table = lib_anchors.generate_anchors(g, cfg.total_stride, cfg.ratios, cfg.scales)
    testing.compare("anchors vs siammask_edu", anchors_ours, lib_table, atol=0, rtol=0)

# %% [markdown]
# ## The box: deltas → boxes
#
# The box head gives four numbers per anchor, laid out like the score: channel
# $5j + a$ with $j$ = (dx, dy, dw, dh). They are decoded as in Faster R-CNN:
#
# $$c_x = a_x + d_x\,a_w,\quad c_y = a_y + d_y\,a_h,\quad w = a_w\,e^{d_w},\quad
# h = a_h\,e^{d_h},$$
#
# in crop pixels relative to the crop centre (127 for a 255 crop). The tracker divides by
# the crop scale to get frame pixels.

# %%
d = delta[0].view(4, k * g * g).numpy()  # (4, 3125), same flat order as the scores
A = anchors_ours
boxes = np.stack([A[:, 0] + d[0] * A[:, 2], A[:, 1] + d[1] * A[:, 3],
                  A[:, 2] * np.exp(d[2]), A[:, 3] * np.exp(d[3])], axis=1)  # (3125, 4)
bx, by, bw, bh = boxes[n_best]
print(f"best anchor {A[n_best]} -> box cx={bx:.1f} cy={by:.1f} w={bw:.1f} h={bh:.1f}")
testing.compare("dx of the best anchor", d[0, n_best], delta[0, a_best, r_best, c_best])

# %%
cx, cy = 127 + bx, 127 + by  # crop centre + offset
x1, y1 = max(cx - bw / 2, car_box[0]), max(cy - bh / 2, car_box[1])
x2 = min(cx + bw / 2, car_box[0] + car_box[2])
y2 = min(cy + bh / 2, car_box[1] + car_box[3])
inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
box_iou = inter / (bw * bh + car_box[2] * car_box[3] - inter)
print(f"decoded box vs the car's box in the crop: IoU {box_iou:.3f}")
if trained:
    assert box_iou > 0.5  # shipped SiamMask-Lite: 0.81 (anchor 2 at RoW (12, 12))

# %%
show = x_rgb.copy()
cv2.rectangle(show, (int(cx - bw / 2), int(cy - bh / 2)), (int(cx + bw / 2), int(cy + bh / 2)),
              (255, 255, 0), 2)
ax_, ay_ = 127 + A[n_best, 0], 127 + A[n_best, 1]
cv2.rectangle(show, (int(ax_ - A[n_best, 2] / 2), int(ay_ - A[n_best, 3] / 2)),
              (int(ax_ + A[n_best, 2] / 2), int(ay_ + A[n_best, 3] / 2)), (255, 0, 255), 1)
cv2.rectangle(show, car_box[:2], (car_box[0] + car_box[2], car_box[1] + car_box[3]),
              (255, 255, 255), 1)
figures.image_strip([show], ["anchor (magenta), decoded box (yellow), car (white)"],
                    size=3.5)

# %% [markdown]
# ## The masks: one per RoW (paper Fig. 8)
#
# The mask head's 3969 channels at RoW `(r, c)` are that RoW's $63 \times 63$ mask,
# row-major: channel $m$ is mask pixel $(m \,//\, 63,\ m \bmod 63)$. Every RoW predicts a
# mask of *its own* window — the 127-px square of the crop it looks at (chapter 1),
# sampled at 63×63 — and the score decides which one to use.

# %%
masks = figures.as_row_masks(mask_logits)  # (25, 25, 63, 63)
testing.compare("channel 64 = pixel (1, 1)", masks[:, :, 1, 1], mask_logits[0, 64], atol=0)
grid = [0, 6, 12, 18, 24]
figures.row_mask_grid(masks, grid, grid, score=p_fg.max(dim=0).values)

# %% [markdown]
# The RoW on the car, (12, 12), gives a crisp car-shaped mask. RoWs off the car give
# vaguer blobs of whatever lies in their windows: the mask loss is computed only at
# positive RoWs (chapter 8), so nothing teaches a RoW to return an empty mask — the score
# decides which mask is used. (With the seeded weights all masks are texture.) Fig. 8's
# point: **every RoW has a different mask**.

# %%
corr = masks.reshape(625, -1)
sim = np.corrcoef(corr[[0, 312, 624]])
print("correlation between the masks of RoWs (0,0), (12,12), (24,24):\n", sim.round(3))
assert not np.allclose(masks[0, 0], masks[12, 12])

# %% [markdown]
# Is the chosen RoW's mask the car? Stretched to its 127-px window of the crop and
# thresholded at the tracker's `seg_thr`, it can be compared with the car's pixels:

# %%
wx0, wy0, wx1, wy1 = figures.row_window(r_best, c_best)
prob = 1 / (1 + np.exp(-masks[r_best, c_best]))  # (63, 63) sigmoid
window_mask = cv2.resize(prob, (127, 127)) > cfg.seg_thr
canvas = np.zeros((255 + 64, 255 + 64), bool)  # the crop and 32 px around it
canvas[wy0 + 32:wy1 + 32, wx0 + 32:wx1 + 32] = window_mask
mask_x = canvas[32:-32, 32:-32]  # (255, 255)
mask_iou = (mask_x & car_x).sum() / (mask_x | car_x).sum()
print(f"mask of RoW ({r_best}, {c_best}) vs the car in the crop: IoU {mask_iou:.3f}")
if trained:
    assert mask_iou > 0.5  # shipped SiamMask-Lite, its 63x63 head without refinement: 0.70

# %% [markdown]
# ## Exploring the RoWs
#
# `RowMaskViewer` puts it together: sliders pick a RoW, the picture shows the score map
# (best anchor per RoW) with the RoW outlined, its 63×63 mask, and that mask drawn into the
# RoW's window of the search crop. It opens at the best-scoring RoW.

# %%
viewer = widgets.RowMaskViewer(mask_logits[0], p_fg.max(dim=0).values, frame_crop=x_rgb)
viewer.widget

# %% [markdown]
# The sliders call `viewer.show(row, col)`, which you can also call from code:

# %%
print("opened at", viewer.current, "(best RoW)")
assert viewer.current == (r_best, c_best)
below = (min(r_best + 1, 24), c_best)  # the RoW 8 crop pixels below the best
viewer.show(*below)
assert viewer.current == below and (viewer.row.value, viewer.col.value) == below
assert bytes(viewer.image.value).startswith(b"\x89PNG")
print(viewer.label.value.replace("&middot;", "|").replace("&gt;", ">"))

# %% [markdown]
# Without a widget front-end (a static page, a PDF), the same view as a figure:

# %%
viewer.figure()

# %% [markdown]
# ## Recap
#
# * Score: `(1, 10, 25, 25)`, five background channels then five foreground channels; a
#   softmax per pair; flat index $a \cdot 625 + r \cdot 25 + c$.
# * Anchors: five ratios at one scale, integer-truncated to (104, 32) … (32, 96), centred on
#   the RoWs at $-96 + 8i$ crop pixels from the crop centre.
# * Box: `(1, 20, 25, 25)`, channel $5j + a$ for $j$ = dx, dy, dw, dh; decoded against the
#   anchor.
# * Mask: `(1, 3969, 25, 25)`, a row-major 63×63 mask per RoW, of that RoW's own window.
# * The base model is the sharp checkpoint without its refinement weights; loading it with
#   `preset="base"` drops them with a warning.
# * Read with trained weights (SiamMask-Lite), the best RoW's box and mask cover the car;
#   masks of RoWs off the target are not trained to be empty — the score picks the RoW.
#
# ## Exercises
#
# 1. Write the flat index of the best anchor for a `(25, 25, 5)` layout instead of
#    `(5, 25, 25)`. Which pysot function shows that the released code does not use it?
# 2. Decode the boxes of all five anchors at the best RoW and draw them. Do they agree?
# 3. Compute the 63×63 mask of RoW (12, 12) from `out.mask_corr` with `model.mask_head.head`
#    and compare it with `masks[12, 12]` using `testing.compare`.
# 4. Paste the chosen RoW's mask back into the 255×255 crop: which crop pixel does mask
#    pixel (0, 0) of RoW (r, c) land on?
