# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Siamese tracking in one picture
#
# **What you will build.** From two real video frames and one box you will cut an
# exemplar $z$ and a search image $x$, push both through SiamMask, and look at the three
# things it says about every *response of a candidate window* (RoW): a score, a box and a
# mask. Every later chapter zooms into one arrow of this picture.
#
# The paper is Wang et al., *Fast Online Object Tracking and Segmentation: A Unifying
# Approach*, CVPR 2019. Section 3 is the part this book implements.
#
# Symbols as in the book's [glossary](index.md#glossary); where the paper and the
# released code differ, and which side the library follows:
# [paper vs code](paper_vs_code.md).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 4 s
# as a fresh clone runs it (default settings, no `../shared`), 4 s with the
# project's data, 4 s in CI's short runs (1 thread).
# On a busy machine the threads wait for free cores and every chapter takes several
# times longer: start Jupyter with `SIAMMASK_EDU_THREADS=1` (or the number of cores
# really free) to set the chapters' thread count.

# %%
# %matplotlib inline
from pathlib import Path

import cv2
import numpy as np
import torch

from siammask_edu import count_parameters, data, load_released_checkpoint, testing
from siammask_edu.config import TrackerConfig, book_threads
from siammask_edu.viz import figures

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it

# %% [markdown]
# ## Two frames and a box
#
# We use the DAVIS-2016 sequence `car-shadow` (480p). DAVIS gives a mask for the first
# frame; a tracker is started from a **box**, so we take the mask's bounding rectangle
# with `cv2.boundingRect`, exactly as the released code does for DAVIS. Boxes in this book
# are `xywh`: top-left corner, width, height, 0-based pixels.
#
# `cv2.imread` returns **BGR** bytes. The released weights were trained on BGR crops with
# raw 0–255 values, so we keep the BGR frames for the network and make RGB copies only to
# draw them.
#
# `testing.book_sequence` reads the sequence from the data root (chapter 10 says where
# DAVIS comes from). Without DAVIS it says so and returns the package's own
# `synthetic_ellipse` sample instead — a textured ellipse with exact masks — and the
# chapter runs on that: read "the ellipse" wherever the text says "the car".

# %%
seq = testing.book_sequence("car-shadow", n_frames=6)
frame0, frame5 = seq.frames[0], seq.frames[5]  # (480, 854, 3) uint8 BGR for car-shadow
box = seq.box  # cv2.boundingRect of the first mask: (x, y, w, h)
print(seq.name, "| frame", frame0.shape, frame0.dtype, "| first-frame box xywh:", box)
assert frame0.shape == frame5.shape
if seq.davis:
    assert frame0.shape == (480, 854, 3) and box == (313, 88, 342, 194)
else:  # the sample's groundtruth.txt starts with the same box
    assert box == data.sample_box("synthetic_ellipse")

# %%
x0, y0, w0, h0 = box
show0 = np.ascontiguousarray(frame0[:, :, ::-1])  # RGB copies for drawing
show5 = np.ascontiguousarray(frame5[:, :, ::-1])
cv2.rectangle(show0, (x0, y0), (x0 + w0, y0 + h0), (255, 255, 0), 3)
figures.image_strip([show0, show5], ["frame 0 with its box", "frame 5: where is it now?"],
                    size=4.0)

# %% [markdown]
# ## Exemplar and search crops
#
# SiamFC-style trackers never look at the whole frame. They cut two squares:
#
# * the **exemplar** $z$: the target plus some context, resized to $127\times127$;
# * the **search image** $x$: a square about twice as large, centred where the target
#   was in the previous frame, resized to $255\times255$.
#
# The context is half the box perimeter: with $p = (w + h)/2$ the exemplar side is
# $s_z = \sqrt{(w + p)(h + p)}$ pixels of the frame, and the search side is
# $s_x = s_z \cdot 255/127$, so one crop pixel covers the same frame area in both crops.
# `TrackerConfig` holds these numbers.

# %%
cfg = TrackerConfig.davis()
p = cfg.context_amount * (w0 + h0)
s_z = float(np.sqrt((w0 + p) * (h0 + p)))
s_x = s_z * cfg.instance_size / cfg.exemplar_size
scale = cfg.exemplar_size / s_z  # crop pixels per frame pixel
print(f"context p = {p:.1f} px | s_z = {s_z:.1f} px | s_x = {s_x:.1f} px | "
      f"scale = {scale:.4f}")
assert abs(s_x / s_z - 255 / 127) < 1e-12

# %% [markdown]
# A simple crop: take the square of side `side` centred on `(cx, cy)`; where it leaves the
# frame, pad with the frame's mean colour (a neutral value the network sees as "nothing");
# resize with bilinear interpolation.
#
# :::{note}
# This is a *didactic* crop. The released tracker rounds the corner with Python's
# half-to-even `round`, centres the square about one pixel up-left, and truncates the mean
# colour to `uint8`; those details change the network's output slightly. Chapter 7 uses the
# library's exact crop and checks it against the released tracker.
# :::

# %%
def crop_square_ours(frame, cx, cy, side, out_size, pad_value):
    """Square of `side` frame pixels centred on (cx, cy), resized to out_size."""
    side = round(side)
    left, top = round(cx - side / 2), round(cy - side / 2)
    h, w = frame.shape[:2]
    pad = max(0, -left, -top, left + side - w, top + side - h)
    if pad > 0:  # grow the frame so the square fits, filled with pad_value
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                   value=pad_value)
        left, top = left + pad, top + pad
    patch = frame[top:top + side, left:left + side]
    return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)


cx, cy = x0 + w0 / 2, y0 + h0 / 2  # box centre (continuous convention)
mean_bgr = tuple(float(v) for v in frame0.reshape(-1, 3).mean(0))
z_img = crop_square_ours(frame0, cx, cy, s_z, 127, mean_bgr)  # (127, 127, 3) BGR
x_img = crop_square_ours(frame5, cx, cy, s_x, 255, mean_bgr)  # (255, 255, 3) BGR
print("z", z_img.shape, "x", x_img.shape)
assert z_img.shape == (127, 127, 3) and x_img.shape == (255, 255, 3)

# %% [markdown]
# The search crop of frame 5 is centred on the **old** position. The car has moved a
# little; finding by how much is the tracker's job. Note the grey bands: the search square
# ($s_x \approx 1066$ px) is larger than the 854×480 frame.

# %%
figures.image_strip([z_img[:, :, ::-1], x_img[:, :, ::-1]],
                    ["exemplar z (127x127, frame 0)", "search x (255x255, frame 5)"])

# %% [markdown]
# The network takes float tensors `(B, 3, H, W)` with the BGR channel order and raw 0–255
# values (no mean/std normalisation):

# %%
def to_tensor(img_bgr):
    return torch.from_numpy(img_bgr).permute(2, 0, 1)[None].float()  # (1, 3, H, W)


z = to_tensor(z_img)
x = to_tensor(x_img)
print(tuple(z.shape), tuple(x.shape), z.dtype, float(z.min()), float(z.max()))

# %% [markdown]
# ## The network
#
# `load_released_checkpoint` reads a file with the **released key names** (official
# foolwood/SiamMask layout or pysot's) and returns our `SiamMask` module in eval mode.
#
# :::{warning}
# The checkpoint loaded here, `siammask_sharp_seed1.f16.pth`, holds **random weights in
# the real key layout**: it was made by seeding the official initialisation, not by
# training. The book uses it wherever the point is the released network itself — its
# shapes, its layout, and exactness against the released implementation (the reference
# fixtures were computed with it) — but its *outputs are not meaningful*: the score does
# not find the car and the mask does not outline it. To read the outputs we switch to
# trained weights below.
# :::
#
# The file is part of the reference fixtures (`../shared/reference`); a checkout without
# them gets the same network freshly initialised (`testing.released_layout_network` says
# so), which has the same shapes and equally meaningless outputs.

# %%
model, recorded = testing.released_layout_network()  # the seeded checkpoint, if here
n_params = count_parameters(model)
print(f"{model.config.name} model, {n_params:,} parameters")
assert n_params == 21_482_052  # the released sharp model

# %% [markdown]
# Tracking splits the network in two calls (pysot's names):
#
# * `template(z)` runs once per target and keeps the exemplar features;
# * `track(x, exemplar)` runs once per frame.
#
# Both branches share the backbone weights (a *Siamese* network); the correlation of their
# features is what compares $z$ with every window of $x$.

# %%
with torch.no_grad():
    exemplar = model.template(z)
    out = model.track(x, exemplar)
print("zf         ", tuple(exemplar.zf.shape), "  exemplar feature")
print("xf         ", tuple(out.xf.shape), " search feature")
print("score      ", tuple(out.score.shape), " [bg x 5, fg x 5] per RoW")
print("delta      ", tuple(out.delta.shape), " [dx, dy, dw, dh] x 5 anchors")
print("mask_corr  ", tuple(out.mask_corr.shape), " one 256-d vector per RoW")
assert tuple(exemplar.zf.shape) == (1, 256, 7, 7)
assert tuple(out.xf.shape) == (1, 256, 31, 31)
assert tuple(out.score.shape) == (1, 10, 25, 25)
assert tuple(out.delta.shape) == (1, 20, 25, 25)
assert tuple(out.mask_corr.shape) == (1, 256, 25, 25)

# %% [markdown]
# ## What a RoW is
#
# The correlation output is a $25\times25$ grid. Each grid cell is one **RoW**: a
# $1\times1\times256$ vector that describes how one candidate window of $x$ matches $z$.
# Neighbouring RoWs are 8 crop pixels apart (the network's stride), and RoW
# `(row, col)` looks at the $127\times127$ square of the search crop
# $[8\,col - 32,\ 8\,col + 95) \times [8\,row - 32,\ 8\,row + 95)$, the size of the
# exemplar; the centre RoW (12, 12) looks at the centre of the crop.

# %%
assert cfg.score_size == 25  # (255 - 127) // 8 + 1 + 8, the released formula
row_vec = out.mask_corr[0, :, 12, 12]
print("RoW (12, 12):", tuple(row_vec.shape), "| its window:", figures.row_window(12, 12))
assert figures.row_window(12, 12) == (64, 64, 191, 191)  # the central 127 px

# %% [markdown]
# ## Trained weights: SiamMask-Lite
#
# To see what the outputs *say*, we need trained weights. The package ships
# **SiamMask-Lite**, trained by this project (chapter 9): an ImageNet EfficientNet-Lite0
# backbone instead of ResNet-50 and 128 channels instead of 256, but the same crops
# (BGR, 0–255), the same 25×25 RoWs and the same three heads. It has never seen the
# DAVIS-2016 validation sequences, `car-shadow` among them. `testing.lite_or_seeded()`
# loads it; in a build without the weights it returns the seeded network again and says
# so, and the checks on the car below are skipped.

# %%
net, trained = testing.lite_or_seeded()
with torch.no_grad():
    net_out = net.track(x, net.template(z))
print(f"{net.config.name}: {count_parameters(net):,} parameters | RoW vectors",
      tuple(net_out.mask_corr.shape), "| score", tuple(net_out.score.shape),
      "| delta", tuple(net_out.delta.shape))
assert tuple(net_out.score.shape) == (1, 10, 25, 25)
assert tuple(net_out.delta.shape) == (1, 20, 25, 25)
assert tuple(net_out.mask_corr.shape) == (1, net.config.hidden_channels, 25, 25)

# %% [markdown]
# ## Three outputs per RoW
#
# For each RoW the three branches say:
#
# 1. **score** — for each of $k = 5$ anchor boxes, background and foreground logits; a
#    softmax over the pair gives the probability that the window holds the target;
# 2. **box** — for each anchor, four numbers $(dx, dy, dw, dh)$ that move and stretch it
#    (chapter 4 turns them into a box);
# 3. **mask** — a binary mask of the target *inside that window*: $63\times63$ from the
#    mask head, or $127\times127$ after refinement (chapter 5).
#
# The tracker picks the RoW with the best score and reads its box and its mask. Here we
# take the plain arg-max of the foreground probability (the real tracker adds a motion
# penalty and a cosine window first). The shipped lite weights may come from the first
# stage of training only, without the refinement module: then the 63×63 mask is all
# there is.

# %%
fg = net_out.score[0].view(2, 5, 25, 25).softmax(dim=0)[1]  # (5, 25, 25) P(target)
a, r, c = np.unravel_index(int(fg.argmax()), fg.shape)
a, r, c = int(a), int(r), int(c)
with torch.no_grad():
    mask63 = net.mask_at(net_out, r, c)  # (1, 1, 63, 63) logits, mask head
    mask127 = net.refine_at(net_out, r, c) if net.refine is not None else None  # refined
box_deltas = net_out.delta[0].view(4, 5, 25, 25)[:, a, r, c]
print(f"best RoW (row={r}, col={c}), anchor {a}: P(fg) = {float(fg[a, r, c]):.3f}")
print("box deltas (dx, dy, dw, dh):", [round(float(v), 3) for v in box_deltas])
print("mask head", tuple(mask63.shape), "| refined mask",
      "none (no refinement module)" if mask127 is None else tuple(mask127.shape))
assert tuple(mask63.shape) == (1, 1, 63, 63)
assert mask127 is None or tuple(mask127.shape) == (1, 1, 127, 127)

# %% [markdown]
# Is that the car? The annotation of frame 5 (the synthetic sample's exact mask without
# DAVIS), cut with the same crop, says where the car is in $x$. We put the RoW's mask (probability above the tracker's threshold
# `seg_thr`, stretched to its 127-px window) into the crop and measure its overlap with
# the annotation, the IoU.

# %%
anno5 = seq.masks[5].astype(np.uint8) * 255  # (H, W) 0 or 255
car_x = crop_square_ours(anno5, cx, cy, s_x, 255, 0) > 127  # (255, 255) the car in x
logits = mask63 if mask127 is None else mask127
row_mask = cv2.resize(torch.sigmoid(logits[0, 0]).numpy(), (127, 127)) > cfg.seg_thr
wx0, wy0, wx1, wy1 = figures.row_window(r, c)
canvas = np.zeros((255 + 64, 255 + 64), bool)  # the crop and 32 px around it
canvas[wy0 + 32:wy1 + 32, wx0 + 32:wx1 + 32] = row_mask
mask_x = canvas[32:-32, 32:-32]  # (255, 255) the RoW's mask in x
iou = (mask_x & car_x).sum() / (mask_x | car_x).sum()
print(f"P(fg) {float(fg[a, r, c]):.3f} | mask vs annotation in x: IoU {iou:.3f}")
if trained:
    # shipped SiamMask-Lite (refined 127x127 mask): P(fg) 1.000, IoU 0.84 at RoW (12, 11)
    # (0.63 with the earlier base-stage weights); the floors fail if the mask misses the car
    assert float(fg[a, r, c]) > 0.9 and iou > 0.5
    assert car_x[(wy0 + wy1) // 2, (wx0 + wx1) // 2]  # the window is centred on the car

# %% [markdown]
# The whole chapter in one picture: the search crop with the chosen RoW's window, the
# foreground score of every RoW (best anchor), the masks of that RoW, and that mask in
# the crop (green) against the annotation (white outline).

# %%
x_show = np.ascontiguousarray(x_img[:, :, ::-1])
cv2.rectangle(x_show, (wx0, wy0), (wx1 - 1, wy1 - 1), (255, 255, 0), 2)
overlap = np.ascontiguousarray(x_img[:, :, ::-1])
overlap[mask_x] = (0.5 * overlap[mask_x] + [0, 127, 0]).astype(np.uint8)
outline, _ = cv2.findContours(car_x.astype(np.uint8), cv2.RETR_EXTERNAL,
                              cv2.CHAIN_APPROX_NONE)
cv2.drawContours(overlap, outline, -1, (255, 255, 255), 1)
panels = [x_show, fg.max(dim=0).values, torch.sigmoid(mask63[0, 0])]
titles = [f"x with RoW ({r},{c})", "P(fg), 25x25 RoWs", "its 63x63 mask"]
if mask127 is not None:
    panels.append(torch.sigmoid(mask127[0, 0]))
    titles.append("refined 127x127")
figures.image_strip(panels + [overlap], titles + [f"mask in x: IoU {iou:.2f}"])

# %% [markdown]
# With trained weights the picture reads as it should: the foreground probability peaks
# on the RoWs that see the car and is near zero elsewhere, and the chosen RoW's mask
# covers most of the car — coarsely: 63×63 pixels for a 127-px window. (With the
# seeded weights the score map is structured noise and the masks are blobs: the picture
# is right, the numbers are not trained.) Chapter 7 runs the whole tracker over the
# sequence; the reference fixtures check every number against the released
# implementation with the seeded network.
#
# ## The released trained checkpoint
#
# SiamMask-Lite is small and trained on little data. The authors released the trained
# ResNet-50 network with their code, in the README of
# [foolwood/SiamMask](https://github.com/foolwood/SiamMask) ("Download the SiamMask
# model"): `SiamMask_DAVIS.pth` (for DAVIS and the demo) and `SiamMask_VOT.pth` (for VOT),
# both from `http://www.robots.ox.ac.uk/~qwang/`. pysot's model zoo distributes the same
# network (`siammask_r50_l3`) in its own key layout; `load_released_checkpoint` reads both
# layouts, detecting which from the key names, and fails with a clear message on an HTML
# page or a truncated download. Nothing is downloaded here (the book runs offline):
# download the file yourself and put it beside this notebook.

# %%
real_ckpt = Path("SiamMask_DAVIS.pth")  # relative to the notebook's folder
if real_ckpt.exists():
    real_model = load_released_checkpoint(real_ckpt)  # official or pysot layout
    print("loaded", real_ckpt, "as", real_model.config.name,
          f"({count_parameters(real_model):,} parameters)")
else:
    print(f"{real_ckpt} not found: download SiamMask_DAVIS.pth (see above) to try the "
          "released trained network in place of `net` (or, in chapter 7, "
          "`Tracker.from_checkpoint`).")

# %% [markdown]
# ## Recap
#
# * A Siamese tracker compares an exemplar $z$ (127×127, with context) against a search
#   image $x$ (255×255, centred on the last position) with one shared backbone.
# * The comparison is a correlation; each cell of its $25\times25$ output is a **RoW**, a
#   256-d vector describing one 127-px window of $x$.
# * SiamMask reads three things from every RoW: a score, a box (per anchor) and a mask.
# * Two networks: the seeded checkpoint (released layout, random weights) for shapes and
#   exactness against the released code, and the shipped SiamMask-Lite (trained) for
#   outputs that mean something — on `car-shadow` its best RoW's mask covers the car.
#
# ## Exercises
#
# 1. Use `blackswan` instead of `car-shadow`. Its box is (127, 73, 383, 312): how much of
#    the search crop is padding?
# 2. Crop the search image of frame 5 around the *true* frame-5 box centre (from its
#    annotation). Which RoW sees the car's centre?
# 3. Change `context_amount` to 0 and to 1. What fraction of the exemplar is target?
# 4. Compute `model.mask_at` for the centre RoW and for a corner RoW. Why is the corner
#    RoW's window partly outside the crop, and what does the network see there?
