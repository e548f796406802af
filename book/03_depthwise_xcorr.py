# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Depth-wise cross-correlation
#
# **What you will build.** The operation at the heart of SiamMask, three times: with loops
# (the definition), as one grouped convolution (what runs), and as unfold + matrix product;
# then SiamFC's single-channel correlation for contrast, and the full depth-wise head of
# the paper (Tables 7–8). Every version is checked against `siammask_edu.ops` with
# `testing.compare`, and we count what each costs.
#
# Symbols as in the book's [glossary](index.md#glossary).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 3 s
# as a fresh clone runs it (default settings, no `../shared`), 4 s with the
# project's data, 3 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import time

import numpy as np
import torch
import torch.nn.functional as F

from siammask_edu import ops, testing
from siammask_edu.config import book_threads, fast_mode
from siammask_edu.viz import figures

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it
_ = torch.manual_seed(0)

# %% [markdown]
# ## The definition
#
# SiamFC compares exemplar features $f(z)$ with search features $f(x)$ by sliding one over
# the other (paper Eq. 1). SiamMask keeps the channels apart: for every sample $b$ and
# channel $c$,
#
# $$\text{out}[b, c, i, j] = \sum_{u, v} x[b, c, i+u, j+v]\; z[b, c, u, v],$$
#
# a *valid* cross-correlation (no kernel flip, no padding): the output is
# $(H_x - H_z + 1) \times (W_x - W_z + 1)$ and has as many channels as the inputs. Each output
# position is a **RoW**, and with $C = 256$ channels each RoW is a 256-d vector instead of
# one number.

# %%
def xcorr_loop_ours(x, z):
    """Depth-wise cross-correlation with loops: (B,C,Hx,Wx), (B,C,Hz,Wz) -> (B,C,Ho,Wo)."""
    B, C, hx, wx = x.shape
    hz, wz = z.shape[2:]
    out = x.new_zeros(B, C, hx - hz + 1, wx - wz + 1)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i:i + hz, j:j + wz]  # (B, C, Hz, Wz)
            out[:, :, i, j] = (window * z).sum(dim=(2, 3))
    return out


# %% [markdown]
# A case small enough to do by hand: one channel, a 4×4 search and a 2×2 exemplar that is
# 1 on its diagonal. Each output is the sum of a window's diagonal.

# %%
x_small = torch.arange(16.0).reshape(1, 1, 4, 4)
z_small = torch.eye(2).reshape(1, 1, 2, 2)
print(x_small[0, 0])
print(xcorr_loop_ours(x_small, z_small)[0, 0])
# window at (0, 0) is [[0, 1], [4, 5]]: its diagonal sums to 0 + 5 = 5
assert xcorr_loop_ours(x_small, z_small)[0, 0, 0, 0] == 5
assert xcorr_loop_ours(x_small, z_small)[0, 0, 2, 2] == 10 + 15

# %% [markdown]
# At the released sizes (search feature 29×29 and exemplar kernel 5×5 after each head's
# 3×3 convolution, chapter 2) the output is 25×25. We compare with the library, on a
# batch of 2 and a few channels:

# %%
x = torch.randn(2, 16, 29, 29, dtype=torch.float64)
z = torch.randn(2, 16, 5, 5, dtype=torch.float64)
ours_loop = xcorr_loop_ours(x, z)
print("output", tuple(ours_loop.shape))
testing.compare("loop vs ops naive", ours_loop, ops.xcorr_depthwise_naive(x, z), atol=1e-12)
assert tuple(ours_loop.shape) == (2, 16, 25, 25)

# %% [markdown]
# ## As one grouped convolution
#
# `F.conv2d` is already a cross-correlation (deep-learning convolutions do not flip the
# kernel). With `groups=G`, input channels and kernels are split into `G` groups that never
# mix. Folding batch and channels together — the search becomes `(1, B·C, H, W)`, the
# exemplar `(B·C, 1, h, w)` — and using `groups = B·C` makes every (sample, channel) pair
# its own group: the depth-wise correlation in one call (the released `conv2d_dw_group`).

# %%
def xcorr_grouped_ours(x, z):
    B, C = x.shape[:2]
    xg = x.reshape(1, B * C, *x.shape[2:])  # (1, B*C, Hx, Wx)
    zg = z.reshape(B * C, 1, *z.shape[2:])  # (B*C, 1, Hz, Wz)
    out = F.conv2d(xg, zg, groups=B * C)  # (1, B*C, Ho, Wo)
    return out.reshape(B, C, *out.shape[2:])


testing.compare("grouped vs loop", xcorr_grouped_ours(x, z), ours_loop, atol=1e-10)
testing.compare("grouped vs ops", xcorr_grouped_ours(x, z), ops.xcorr_depthwise(x, z),
                atol=1e-12)

# %% [markdown]
# ## As unfold and a dot product
#
# A third view, useful to see what a RoW *is*: `F.unfold` cuts every 5×5 window of every
# channel into a column; the correlation is the dot product of each column with the
# flattened exemplar of the same channel.

# %%
def xcorr_unfold_ours(x, z):
    B, C, hx, wx = x.shape
    hz, wz = z.shape[2:]
    cols = F.unfold(x.reshape(B * C, 1, hx, wx), (hz, wz))  # (B*C, hz*wz, L)
    out = torch.einsum("nkl,nk->nl", cols, z.reshape(B * C, hz * wz))  # (B*C, L)
    return out.reshape(B, C, hx - hz + 1, wx - wz + 1)


testing.compare("unfold vs ops", xcorr_unfold_ours(x, z), ops.xcorr_depthwise(x, z),
                atol=1e-10)

# %% [markdown]
# ## SiamFC's correlation, for contrast
#
# SiamFC sums over the channels as well: one similarity number per position (paper Eq. 1,
# and the two-branch SiamMask-2B's score). It is the depth-wise output summed over $C$,
# or a grouped convolution with one group per *sample*:

# %%
def xcorr_full_ours(x, z):
    return xcorr_grouped_ours(x, z).sum(dim=1, keepdim=True)  # (B, 1, Ho, Wo)


full = ops.xcorr_full(x, z)
testing.compare("full vs sum of depthwise", xcorr_full_ours(x, z), full, atol=1e-10)
print("depth-wise", tuple(ops.xcorr_depthwise(x, z).shape), "| full", tuple(full.shape))
assert tuple(full.shape) == (2, 1, 25, 25)

# %% [markdown]
# ### A picture
#
# Take a synthetic frame (a bright ellipse, the "target", and two dark distractors), use
# its mean-subtracted RGB values as a 3-channel "feature", and correlate the patch around
# the target with the whole frame. The full correlation is one map; the depth-wise one
# keeps one map per channel, and their sum is the full map.

# %%
frame, target = testing.synthetic_frame(96, 96, seed=3, return_mask=True)
feat = torch.from_numpy(frame).permute(2, 0, 1)[None].double()  # (1, 3, 96, 96)
feat = feat - feat.mean(dim=(2, 3), keepdim=True)
ys, xs = np.nonzero(target)
ty, tx = int(ys.mean()), int(xs.mean())  # target centre
half = 10
zf = feat[:, :, ty - half:ty + half + 1, tx - half:tx + half + 1]  # (1, 3, 21, 21)
dw = ops.xcorr_depthwise(feat, zf)  # (1, 3, 76, 76)
fc = ops.xcorr_full(feat, zf)  # (1, 1, 76, 76)
testing.compare("sum of channel maps", dw.sum(dim=1, keepdim=True), fc, atol=1e-6)
peak = np.unravel_index(int(fc.argmax()), fc.shape[2:])
print("target centre", (ty, tx), "| peak of the full map (+ half window)",
      (int(peak[0]) + half, int(peak[1]) + half))
assert abs(peak[0] + half - ty) <= 3 and abs(peak[1] + half - tx) <= 3

# %%
figures.image_strip([frame, fc[0, 0], dw[0, 0], dw[0, 1], dw[0, 2]],
                    ["frame", "full xcorr (SiamFC)", "depth-wise: R", "G", "B"],
                    cmap="viridis", size=2.2)

# %% [markdown]
# With three colour channels the three maps look alike. With 256 learned channels they
# do not: each channel responds to a different part or property of the target, and the
# RoW vector keeps all of them apart — enough information to decode a box and a mask from
# one position, which a single similarity number cannot carry.
#
# ## The depth-wise head
#
# Each SiamMask branch (score, box, mask) is one `DepthwiseXCorrHead` (released
# `DepthCorr`, pysot `DepthwiseXCorr`), with its own weights:
#
# 1. `conv_kernel`: 3×3 conv + BN + ReLU on the exemplar feature, 7×7 → 5×5;
# 2. `conv_search`: the same on the search feature (separate weights), 31×31 → 29×29;
# 3. the depth-wise correlation, 25×25 RoWs of `hidden` channels;
# 4. `head`: 1×1 conv + BN + ReLU ("conv5"), then a 1×1 conv with bias ("conv6") to
#    $2k$ (score), $4k$ (box) or $63^2$ (mask) channels.
#
# We rebuild the forward pass from the parts of a `tiny` model's score head (32 channels,
# the same geometry) and compare it with the module's own forward:

# %%
model = testing.tiny_model(seed=0)
head = model.score_head
zf_t = torch.randn(1, 32, 7, 7)  # adjusted exemplar feature
xf_t = torch.randn(1, 32, 31, 31)  # adjusted search feature
with torch.no_grad():
    kernel = head.conv_kernel(zf_t)  # (1, 32, 5, 5)
    search = head.conv_search(xf_t)  # (1, 32, 29, 29)
    corr = xcorr_grouped_ours(search, kernel)  # (1, 32, 25, 25): the RoWs
    ours = head.head(corr)  # (1, 10, 25, 25)
    ref = head(zf_t, xf_t)
print("kernel", tuple(kernel.shape), "| search", tuple(search.shape),
      "| corr", tuple(corr.shape), "| out", tuple(ours.shape))
testing.compare("head rebuilt vs module", ours, ref, atol=1e-5)

# %% [markdown]
# ## What it costs
#
# Timings on small tensors (a few repeats; CPU timings are noisy, so nothing is asserted):

# %%
def best_time(fn, *args, repeats):
    fn(*args)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


repeats = 3 if fast_mode() else 20
xs_ = torch.randn(1, 256, 29, 29)
zs_ = torch.randn(1, 256, 5, 5)
with torch.no_grad():
    for name, fn in [("loop", xcorr_loop_ours), ("grouped", ops.xcorr_depthwise),
                     ("unfold", xcorr_unfold_ours), ("full (SiamFC)", ops.xcorr_full)]:
        print(f"{name:14s} {1e3 * best_time(fn, xs_, zs_, repeats=repeats):8.3f} ms")

# %% [markdown]
# The loop and the grouped convolution do the same arithmetic, $B\,C\,H_o W_o\,H_z W_z$
# multiply-adds; the loop pays Python overhead at each of the 625 positions.

# %%
def xcorr_macs_ours(x_shape, z_shape):
    B, C, hx, wx = x_shape
    hz, wz = z_shape[2:]
    return B * C * (hx - hz + 1) * (wx - wz + 1) * hz * wz


macs = xcorr_macs_ours(xs_.shape, zs_.shape)
print(f"depth-wise xcorr, 256 channels: {macs / 1e6:.1f} M multiply-adds")
assert macs == ops.xcorr_depthwise_flops(tuple(xs_.shape), tuple(zs_.shape))

# %% [markdown]
# Put in context, the correlation is the cheap part of a head. Counting every layer of one
# released head (256 channels) per search frame:

# %%
def head_macs(out_channels, c=256, rows=25):
    conv_kernel = c * c * 9 * 5 * 5  # 7x7 -> 5x5 (once per target, in fact)
    conv_search = c * c * 9 * 29 * 29
    xcorr = c * rows * rows * 5 * 5
    conv5 = c * c * rows * rows
    conv6 = c * out_channels * rows * rows
    return {"conv_kernel": conv_kernel, "conv_search": conv_search, "xcorr": xcorr,
            "conv5": conv5, "conv6": conv6}


for name, k in [("score", 10), ("box", 20), ("mask", 63 * 63)]:
    parts = head_macs(k)
    print(f"{name:5s} " + "  ".join(f"{n} {v / 1e6:6.1f}M" for n, v in parts.items()))
mask = head_macs(63 * 63)
assert mask["xcorr"] == macs and mask["conv6"] > 100 * mask["xcorr"]

# %% [markdown]
# The mask head's last layer, 256 → 3969 at all 625 RoWs, costs about 635 M multiply-adds,
# 150 times the correlation. The tracker needs the mask of **one** RoW (the best-scoring
# one), so `SiamMask.mask_at` runs the two 1×1 layers on that single RoW vector: 625 times
# cheaper, and the same function in eval mode (BatchNorm uses its stored statistics, so
# each RoW is computed independently of the others). The next check shows it on the tiny
# model. Its untrained BatchNorm statistics let values grow into the thousands, and a
# 1×1 convolution over 625 positions sums in another order than over one, so we compare
# with a relative tolerance of 1e-4 (float32 has about 7 significant digits).

# %%
with torch.no_grad():
    ex = model.template(torch.rand(1, 3, 127, 127) * 255)
    out = model.track(torch.rand(1, 3, 255, 255) * 255, ex, mask_head=True)
    one_row = model.mask_head.head(out.mask_corr[:, :, 7:8, 18:19])  # (1, 3969, 1, 1)
dense = out.mask_logits[0, :, 7, 18]
print(f"largest |logit| {float(dense.abs().max()):.0f}")
testing.compare("mask of RoW (7, 18)", one_row[0, :, 0, 0], dense, atol=1e-3, rtol=1e-4)
testing.compare("mask_at", model.mask_at(out, 7, 18).flatten(), dense, atol=1e-3, rtol=1e-4)

# %% [markdown]
# ## Recap
#
# * Depth-wise cross-correlation slides each exemplar channel over the same search
#   channel; the output keeps all channels, so each RoW is a vector, not a number.
# * It *is* a grouped convolution with one group per (sample, channel) — the released
#   `conv2d_dw_group`; the loop and unfold versions are the same numbers.
# * SiamFC's correlation is the channel sum of the depth-wise one.
# * A head = 3×3 conv on each side, depth-wise xcorr, then 1×1 conv5 + conv6. The mask
#   head's conv6 dominates the cost; evaluating it at one RoW is the trick.
#
# ## Exercises
#
# 1. SiamRPN's "up-channel" correlation turns the exemplar into $2k \cdot 256$ kernels of
#    256 channels each. Count its multiply-adds and parameters for the score branch.
# 2. Write the depth-wise correlation with `torch.fft` (correlation theorem). From which
#    exemplar size is it faster than the grouped convolution?
# 3. Move the synthetic target's patch one pixel: by how much does the full map's peak move?
# 4. Replace `xcorr_depthwise` by `xcorr_full` in a copy of the head (so `hidden` = 1 after
#    the correlation). Which outputs can it still produce?
