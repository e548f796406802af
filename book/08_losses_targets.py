# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Losses and targets
#
# **What you will build.** The three losses SiamMask is trained with — the score loss,
# the box loss and the per-RoW mask loss of Eq. 3 — and their weighted sums, Eq. 4 (two
# branches) and Eq. 5 (three branches), computed by hand with NumPy on a batch small
# enough to read, and checked against `siammask_edu.losses`. Then the *targets* those
# losses compare with: anchor labels by IoU and one 127×127 mask per positive RoW, drawn
# on a real training pair from DAVIS-2016.
#
# Paper §3.2 (Eq. 3–5), the released training code
# (`shared/reference/released-implementation.md` §5.4–§5.5), and where they differ:
# $\lambda_1 = 32$ in the paper, 36 in the released config; smooth L1 in the paper
# (through SiamRPN), plain L1 in the code.
#
# Symbols as in the book's [glossary](index.md#glossary); where the paper and the
# released code differ, and which side the library follows:
# [paper vs code](paper_vs_code.md).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 3 s
# as a fresh clone runs it (default settings, no `../shared`), 4 s with the
# project's data, 3 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from siammask_edu import data, losses, targets, testing
from siammask_edu.config import book_threads
from siammask_edu.datasets import CustomSource, DavisSource, PairConfig, PairDataset
from siammask_edu.paths import have_davis

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it
rng = np.random.default_rng(0)

# %% [markdown]
# ## A tiny batch
#
# Two search crops ($B = 2$), $k = 2$ anchors per RoW and a 3×3 grid of RoWs — the real
# network has $k = 5$ and 25×25, but nothing below depends on the sizes. The score branch
# gives $2k$ logits per RoW (background for each anchor, then foreground for each
# anchor), the box branch $4k$ (dx for each anchor, then dy, dw, dh). Labels are 1
# (positive), 0 (negative) or −1 (ignored).

# %%
B, k, n = 2, 2, 3
score = torch.tensor(rng.normal(size=(B, 2 * k, n, n)), dtype=torch.float32)
delta = torch.tensor(rng.normal(size=(B, 4 * k, n, n)), dtype=torch.float32)
label_cls = torch.full((B, k, n, n), -1, dtype=torch.int64)
label_cls[0, 0, 1, 1] = label_cls[0, 1, 1, 2] = label_cls[1, 1, 0, 1] = 1  # 3 positives
label_cls[0, :, 0, 0] = label_cls[0, 0, 2, :] = label_cls[1, 0, 2, 2] = 0  # 6 negatives
label_loc = torch.tensor(rng.normal(scale=0.3, size=(B, 4, k, n, n)), dtype=torch.float32)
pos_per_image = (label_cls == 1).flatten(1).sum(1)
label_loc_weight = torch.where(label_cls == 1, 1.0 / pos_per_image[:, None, None, None], 0.0)
print("positives per image:", pos_per_image.tolist(), "| negatives:",
      int((label_cls == 0).sum()), "| ignored:", int((label_cls == -1).sum()))

# %% [markdown]
# ## $\mathcal{L}_{score}$: balanced cross-entropy
#
# A softmax over (background, foreground) of each anchor; the loss is the mean
# negative log-likelihood of the positives and of the negatives, **each weighted ½**, so
# 16 positives weigh as much as 48 negatives (released `select_cross_entropy_loss`).

# %%
s = score.numpy().reshape(B, 2, k, n, n)  # [bg x k, fg x k] -> (B, 2, k, n, n)
logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))  # log-softmax over bg/fg
lab = label_cls.numpy()
nll_pos = -logp[:, 1][lab == 1].mean()
nll_neg = -logp[:, 0][lab == 0].mean()
l_score = 0.5 * nll_pos + 0.5 * nll_neg
testing.compare("L_score by hand", l_score, losses.score_loss(score, label_cls), atol=1e-6)

# %% [markdown]
# ## $\mathcal{L}_{box}$: L1 (released) or smooth L1 (paper)
#
# The regression targets of an anchor $(a_x, a_y, a_w, a_h)$ and a target box
# $(t_x, t_y, t_w, t_h)$ are $\big(\tfrac{t_x - a_x}{a_w}, \tfrac{t_y - a_y}{a_h},
# \log\tfrac{t_w}{a_w}, \log\tfrac{t_h}{a_h}\big)$. Only positive anchors count, each
# with weight $1/\#\text{pos}$ of its image; the sum is divided by the batch size.

# %%
pred = delta.numpy().reshape(B, 4, k, n, n)
diff = np.abs(pred - label_loc.numpy())
w = label_loc_weight.numpy()
l_box_l1 = (diff.sum(axis=1) * w).sum() / B
beta = 1.0 / 9.0  # Faster R-CNN's RPN (sigma = 3)
smooth = np.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)
l_box_smooth = (smooth.sum(axis=1) * w).sum() / B
testing.compare("L_box (L1) by hand", l_box_l1,
                losses.box_loss(delta, label_loc, label_loc_weight, "l1"), atol=1e-6)
testing.compare("L_box (smooth L1) by hand", l_box_smooth,
                losses.box_loss(delta, label_loc, label_loc_weight, "smooth_l1"), atol=1e-6)

# %% [markdown]
# ## $\mathcal{L}_{mask}$: Eq. 3
#
# Each positive RoW $n$ predicts a $w \times h$ mask $m_n$; its label $c_n$ is +1 on the
# object and −1 elsewhere. Eq. 3 sums, over positive RoWs only,
#
# $$\mathcal{L}_{mask} = \sum_n \frac{1 + y_n}{2wh} \sum_{ij} \log\big(1 + e^{-c_n^{ij}
# m_n^{ij}}\big),$$
#
# where $y_n = \pm 1$ says whether RoW $n$ is positive. The released code takes the
# **mean** over every pixel of every positive RoW instead (`F.soft_margin_loss`), and its
# patches keep 0 labels where the 127×127 window leaves the 255 crop; each such pixel adds
# $\log 2$ and no gradient. With $N$ positive RoWs the paper's sum is $N$ times the
# released mean. Three RoWs of 4×4 pixels, one of them half outside the crop:

# %%
N, hw = 3, 4
mask_logits = torch.tensor(rng.normal(scale=2.0, size=(N, 1, hw, hw)), dtype=torch.float32)
mask_labels = torch.tensor(np.where(rng.random((N, 1, hw, hw)) < 0.4, 1.0, -1.0),
                           dtype=torch.float32)
mask_labels[2, :, :, 2:] = 0.0  # outside the search crop: padding
m, c = mask_logits.numpy(), mask_labels.numpy()
per_pixel = np.log1p(np.exp(-c * m))
eq3 = sum(per_pixel[i].sum() / (hw * hw) for i in range(N))  # y_n = +1: (1 + y_n)/2 = 1
released = per_pixel.mean()
testing.compare("Eq. 3 by hand", eq3, losses.mask_loss(mask_logits, mask_labels, "paper"),
                atol=1e-6)
testing.compare("released mean by hand", released,
                losses.mask_loss(mask_logits, mask_labels, "released"), atol=1e-6)
print(f"padding pixels: {int((c == 0).sum())}, each adding log 2 = {np.log(2):.4f}")

# %% [markdown]
# The mask IoU the training log reports per positive RoW thresholds the logits at 0
# (probability ½) and uses logical *and*/*or* — not a sum of booleans, which would count
# a pixel in both masks twice:

# %%
p, g = m > 0, c > 0
iou = np.logical_and(p, g).sum((1, 2, 3)) / np.logical_or(p, g).sum((1, 2, 3))
testing.compare("RoW mask IoU", iou, losses.mask_iou(mask_logits, mask_labels), atol=1e-6)

# %% [markdown]
# ## Eq. 5 and Eq. 4: the totals
#
# $\mathcal{L}_{3B} = \lambda_1 \mathcal{L}_{mask} + \lambda_2 \mathcal{L}_{score} +
# \lambda_3 \mathcal{L}_{box}$. The paper sets $\lambda_1 = 32$, $\lambda_2 = \lambda_3 =
# 1$; the released config uses 36 / 1 / 1.2 with L1 and the mean mask loss.
# `LossWeights.paper()` and `LossWeights.released()` are the two presets. (The paper's
# per-pair Eq. 3 is divided by the batch size when averaged over pairs.)

# %%
tg = {"label_cls": label_cls, "label_loc": label_loc, "label_loc_weight": label_loc_weight,
      "mask_labels": mask_labels}
paper = losses.loss_3b(score, delta, mask_logits, tg, losses.LossWeights.paper())
rel = losses.loss_3b(score, delta, mask_logits, tg, losses.LossWeights.released())
testing.compare("L_3B paper", 32 * eq3 / B + 1 * l_score + 1 * l_box_smooth, paper["total"],
                atol=1e-5)
testing.compare("L_3B released", 36 * released + 1 * l_score + 1.2 * l_box_l1, rel["total"],
                atol=1e-5)

# %% [markdown]
# SiamMask-2B has no anchors: one similarity logit $v$ per RoW, trained with SiamFC's
# logistic loss $\log(1 + e^{-yv})$ against labels $y = +1$ within 16 crop pixels of the
# target centre and −1 elsewhere (positives and negatives weighted ½ each), and
# $\mathcal{L}_{2B} = \lambda_1 \mathcal{L}_{mask} + \lambda_2 \mathcal{L}_{sim}$:

# %%
sim = torch.tensor(rng.normal(size=(B, 1, 25, 25)), dtype=torch.float32)
label_sim = torch.tensor(np.stack([targets.siamfc_labels((127.0, 135.0)),
                                   targets.siamfc_labels((100.0, 100.0))]))
v, y = sim.numpy(), label_sim.numpy()
l_sim = 0.5 * np.log1p(np.exp(-v[y > 0])).mean() + 0.5 * np.log1p(np.exp(v[y < 0])).mean()
two = losses.loss_2b(sim, mask_logits, {"label_sim": label_sim, "mask_labels": mask_labels})
testing.compare("L_sim by hand", l_sim, two["sim"], atol=1e-6)
testing.compare("L_2B (paper weights)", 32 * eq3 / B + l_sim, two["total"], atol=1e-5)
print("positive RoWs of the two SiamFC label maps:", (y > 0).sum((1, 2, 3)).tolist())

# %% [markdown]
# Every term stays finite when a batch has no positive RoW at all (a batch of negative
# pairs): the term is 0 and still part of the graph.

# %%
empty = losses.mask_loss(torch.zeros(0, 1, 127, 127, requires_grad=True),
                         torch.zeros(0, 1, 127, 127))
no_pos = losses.score_loss(score, torch.where(label_cls == 1, 0, label_cls))
print(f"empty mask loss {float(empty.detach())} | score loss without positives {float(no_pos):.4f}")
assert float(empty.detach()) == 0.0 and np.isfinite(float(no_pos))

# %% [markdown]
# ## Targets on a real pair
#
# A training pair from `bear` (DAVIS-2016 *train*, 240p): the template crop (127) from one
# frame and the search crop (255) from a frame up to 25 frames away, both cut with the
# released context rule and augmented (shift, scale, blur, colour).
# `siammask_edu.datasets.PairDataset` returns the crops and every target; here without
# negatives and gray pairs so that the pair is a positive one. Without DAVIS the pair
# comes from the package's `synthetic_ellipse` sample, written in the custom training
# layout (frames, masks, `groundtruth.txt`; chapter 9) to a temporary folder.

# %%
if have_davis("bear", resolution="240p"):
    src = DavisSource(resolution="240p", sequences=["bear"])
else:
    testing.missing_data_note("davis", "the training pair comes from the synthetic_ellipse "
                              "sample instead of bear")
    sample_root = Path(tempfile.mkdtemp(prefix="sample_"))
    data.save_synthetic_sequence(sample_root / "synthetic_ellipse", jpeg_quality=85,
                                 n_frames=30, size=(180, 240), seed=0)  # the sample's recipe
    src = CustomSource(sample_root)
pairs = PairDataset([src], PairConfig.base(neg=0.0, gray=0.0), seed=0, length=8)
item = pairs[3]
z = item["template"][::-1].transpose(1, 2, 0).astype(np.uint8)  # BGR -> RGB for display
x = item["search"][::-1].transpose(1, 2, 0).astype(np.uint8)
x1, y1, x2, y2 = item["box"]
print(f"template {z.shape}, search {x.shape}; target box in the search crop: "
      f"({x1:.1f}, {y1:.1f}) - ({x2:.1f}, {y2:.1f})")
fig, ax = plt.subplots(1, 2, figsize=(7, 3.4), gridspec_kw={"width_ratios": [1, 2]})
ax[0].imshow(z), ax[0].set_title("template 127")
ax[1].imshow(x), ax[1].set_title("search 255 + target box")
ax[1].add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="yellow"))
for a in ax:
    a.set_xticks([]), a.set_yticks([])

# %% [markdown]
# ### Anchor labels
#
# Every RoW (r, c) of the 25×25 map carries $k = 5$ anchors (aspect ratios 0.33 … 3,
# scale 8: 64×64 px of area) centred on crop pixel $(31 + 8c, 31 + 8r)$. An anchor with
# IoU ≥ 0.6 with the target box is positive, one with IoU < 0.3 negative; at most 16
# positives and 64 labelled anchors in all are kept at random. We recompute the IoUs and
# check the labels against the rules:

# %%
anchors = targets.crop_anchors()  # (k, 25, 25, 4): cx, cy, w, h in crop pixels
iou = targets.box_iou_anchors(anchors, item["box"])
labels = item["label_cls"]
pos, neg = labels == 1, labels == 0
print(f"positives {pos.sum()} (IoU {iou[pos].min():.2f}..{iou[pos].max():.2f}), negatives "
      f"{neg.sum()} (max IoU {iou[neg].max():.2f}), ignored {(labels == -1).sum()}; "
      f"anchors with IoU >= 0.6: {(iou >= 0.6).sum()}")
assert 0 < pos.sum() <= 16 and pos.sum() + neg.sum() <= 64
assert iou[pos].min() >= 0.6 and iou[neg].max() < 0.3
testing.compare("box deltas of the positives", item["label_loc"][:, pos], np.stack([
    (((x1 + x2) / 2) - anchors[..., 0][pos]) / anchors[..., 2][pos],
    (((y1 + y2) / 2) - anchors[..., 1][pos]) / anchors[..., 3][pos],
    np.log((x2 - x1) / anchors[..., 2][pos]), np.log((y2 - y1) / anchors[..., 3][pos])]),
    atol=1e-5)

# %%
fig, ax = plt.subplots(figsize=(4.2, 4.2))
ax.imshow(x)
for kk, r, c in zip(*np.nonzero(neg)):
    ax.plot(anchors[kk, r, c, 0], anchors[kk, r, c, 1], "x", color="tab:blue", ms=4)
for kk, r, c in zip(*np.nonzero(pos)):
    cx, cy, aw, ah = anchors[kk, r, c]
    ax.add_patch(plt.Rectangle((cx - aw / 2, cy - ah / 2), aw, ah, fill=False,
                               color="tab:red", lw=0.8))
ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="yellow", lw=1.5))
ax.set_title("positive anchors (red), negatives (blue x)", fontsize=9)
ax.set_xticks([]), ax.set_yticks([]);

# %% [markdown]
# ### One mask per positive RoW
#
# A RoW whose anchors include a positive gets mask weight 1 (the max over its anchors);
# only those RoWs enter $\mathcal{L}_{mask}$. Its target is the 127×127 window of the
# search label centred on the RoW: rows/columns $[8r - 32, 8r + 95)$ of the 255 crop
# (`unfold` with kernel 127, stride 8, padding 32 in the released code: the zero padding
# is the 0 label of Eq. 3 above).

# %%
rows = targets.positive_rows(torch.from_numpy(item["mask_weight"])[None])  # (N, 3): b, r, c
label = torch.from_numpy(item["mask_label"])[None]  # (1, 1, 255, 255), +1 / -1
patches = targets.mask_patches(label, rows)
dense = targets.mask_patches_unfold(label)  # every RoW, the released way
flat = torch.stack([dense[0, r * 25 + c] for _, r, c in rows.tolist()])
testing.compare("patches of the positive RoWs vs unfold", patches.flatten(1), flat, atol=0,
                rtol=0)
print(f"{len(rows)} positive RoWs: {[tuple(t[1:]) for t in rows.tolist()]}")

# %%
show = rows[:: max(1, len(rows) // 3)][:3].tolist()
fig, ax = plt.subplots(1, 1 + len(show), figsize=(2.6 * (1 + len(show)), 2.8))
ax[0].imshow(item["mask_weight"], cmap="gray", vmin=0, vmax=1)
ax[0].set_title("mask weight (25x25)", fontsize=8)
for a, (_, r, c) in zip(ax[1:], show):
    j = next(i for i, t in enumerate(rows.tolist()) if t[1:] == [r, c])
    a.imshow(patches[j, 0], cmap="gray", vmin=-1, vmax=1)
    a.set_title(f"RoW ({r},{c}): rows {8 * r - 32}..{8 * r + 94}", fontsize=8)
for a in ax:
    a.set_xticks([]), a.set_yticks([])

# %% [markdown]
# Neighbouring positive RoWs see the same object shifted by 8 pixels: the mask branch
# learns to segment the object *centred* in its window, and at test time the tracker pastes
# back the mask of the best-scoring RoW only. Grey in a patch is padding (label 0).
#
# ## Recap
#
# * $\mathcal{L}_{score}$: ½ mean NLL of the positives + ½ of the negatives.
# * $\mathcal{L}_{box}$: L1 (released) or smooth L1 (paper) on positive anchors only,
#   $1/\#\text{pos}$ per image, averaged over the batch.
# * $\mathcal{L}_{mask}$ (Eq. 3): logistic loss per pixel over positive RoWs only;
#   released mean = paper sum / N; padding pixels add $\log 2$.
# * Eq. 5 weights 32/1/1 (paper) vs 36/1/1.2 (released); Eq. 4 replaces score and box by
#   SiamFC's $\mathcal{L}_{sim}$.
# * Targets: anchors by IoU (≥ 0.6 / < 0.3, ≤ 16 positives, 64 labelled), one 127×127
#   mask window per positive RoW, cut from the search label.
#
# ## Exercises
#
# 1. Drop the ½/½ balance of $\mathcal{L}_{score}$ (a plain mean over the labelled
#    anchors). With 16 positives and 48 negatives, how much weight do positives lose?
# 2. Compute the fraction of padding pixels of RoW (0, 0) of a 255 crop. What does that
#    add to the released mask loss of an untrained network?
# 3. Lower the positive threshold to 0.5: how many positives does the pair above get?
# 4. Compute the paper's and the released $\mathcal{L}_{3B}$ on the real pair with a
#    random tiny network (`siammask_edu.testing.tiny_model`). Which term dominates?
