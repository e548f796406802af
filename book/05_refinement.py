# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Refinement: sharp masks from one RoW
#
# **What you will build.** The refinement module of SiamMask-sharp (paper Fig. 7 and 9):
# a RoW's 256-d vector is deconvolved to 15×15 and merged, U-Net style, with backbone
# features cut from the RoW's own window, up to a 127×127 mask. You will run its data flow
# by hand, tie the windows to crop pixels (edges included), check the training path
# (all RoWs at once on a 143 search) against the test-time path, and compare the sharp
# mask with the 63×63 mask of the same RoW.
#
# Symbols as in the book's [glossary](index.md#glossary); where the paper and the
# released code differ, and which side the library follows:
# [paper vs code](paper_vs_code.md).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 4 s
# as a fresh clone runs it (default settings, no `../shared`), 4 s with the
# project's data, 4 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import numpy as np
import torch
import torch.nn.functional as F

from siammask_edu import geometry, testing
from siammask_edu.config import book_threads
from siammask_edu.models import Refine
from siammask_edu.paths import fixtures_dir, have_fixtures
from siammask_edu.viz import figures

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it

# %% [markdown]
# ## Inputs: a real search crop and the sharp model
#
# As in chapter 4 we cut the tracker's crops of `car-shadow` (frame 0 and frame 1, equal
# bit for bit to the released tracker's own, which the fixtures hold for its *sharp* run
# with the DAVIS settings), and load the book's seeded sharp checkpoint (random weights
# in the released layout: real algorithm, meaningless masks). This chapter is about the
# released refinement module itself — its windows, its padding, its training path — and
# its output is checked against the released code, which ran with these seeded weights;
# so we stay with them. (SiamMask-Lite's refinement has its own windows, 64/32/16 on
# EfficientNet features; the end of the chapter runs the trained one.)

# %%
seq = testing.book_sequence("car-shadow", n_frames=2)
x0, y0, w0, h0 = seq.box
center, size = (x0 + w0 / 2, y0 + h0 / 2), (w0, h0)
avg_chans = np.mean(seq.frames[0], axis=(0, 1))  # BGR padding colour, as the tracker
z = geometry.crop_subwindow(seq.frames[0], center, 127, geometry.exemplar_crop_size(size),
                            avg_chans)  # (1, 3, 127, 127) BGR 0..255
x = geometry.crop_subwindow(seq.frames[1], center, 255, geometry.search_region(size)[1],
                            avg_chans)  # (1, 3, 255, 255), frame 1
x_rgb = np.ascontiguousarray(x[0].numpy().transpose(1, 2, 0)[:, :, ::-1].astype(np.uint8))
model, recorded = testing.released_layout_network()
rec = None
if seq.davis and recorded and have_fixtures("track_car-shadow_sharp_davis.npz"):
    rec = np.load(fixtures_dir() / "track_car-shadow_sharp_davis.npz")
    testing.compare("search crop vs released", x, rec["x_crops"], atol=0, rtol=0)
with torch.no_grad():
    exemplar = model.template(z)
    out = model.track(x, exemplar)  # the sharp model skips the dense mask head
p0, p1, p2, p3 = out.features
print(figures.feature_shapes_table(
    {"p0 conv1": [p0], "p1 layer1": [p1], "p2 layer2": [p2], "mask_corr": [out.mask_corr]},
    ["search 255"]))
assert out.mask_logits is None

# %% [markdown]
# The RoW the released tracker refined on frame 1, and its output, are in the fixture.
# Our module gives the same logits (without the fixtures we refine the RoW the network
# scores highest):

# %%
if rec is not None:
    r, c = (int(v) for v in rec["refine_pos"][1])  # (row, col)
else:
    fg = out.score[0].view(2, 5, 25, 25).softmax(dim=0)[1].max(dim=0).values  # (25, 25)
    r, c = (int(v) for v in np.unravel_index(int(fg.argmax()), fg.shape))
with torch.no_grad():
    sharp = model.refine_at(out, r, c)  # (1, 1, 127, 127) logits
print("RoW", (r, c), "->", tuple(sharp.shape))
if rec is not None:
    testing.compare("refine vs released", sharp[0, 0], rec["refine_logit"][1], atol=1e-4)
else:
    testing.skipped_reference_check("our refinement module gives the released module's "
                                    "127x127 logits at the RoW it refined (1e-4)")

# %% [markdown]
# ## Fig. 9, step by step
#
# The refinement module starts from the RoW vector and goes up in three *U-modules*
# $U_3, U_2, U_1$. Each adds a horizontal path $h_i$ (the mask so far, two 3×3
# conv + ReLU) to a vertical path $v_i$ (a window of a backbone feature map, two 3×3 conv +
# ReLU), up-samples by nearest neighbour (the released `F.upsample` default, not bilinear)
# and halves the channels with a 3×3 `post` convolution. Paper Fig. 7 draws $U_3$.
#
# | step | input | output |
# |---|---|---|
# | deconv (15×15 kernel, stride 15) | RoW 256×1×1 | 32×15×15 |
# | $U_3$: $h_2 + v_2(p_2\ \text{window})$, up, post0 | 32×15×15 + 512×15×15 | 16×31×31 |
# | $U_2$: $h_1 + v_1(p_1\ \text{window})$, up, post1 | 16×31×31 + 256×31×31 | 4×61×61 |
# | $U_1$: $h_0 + v_0(p_0\ \text{window})$, up, post2 | 4×61×61 + 64×61×61 | 1×127×127 |

# %%
ref = model.refine
q0, q1, q2 = ref.windows_at(out.features, r, c)  # backbone windows of this RoW
with torch.no_grad():
    f = out.mask_corr[:, :, r:r + 1, c:c + 1]  # (1, 256, 1, 1): the RoW
    m = ref.deconv(f)
    print("deconv      ", tuple(f.shape), "->", tuple(m.shape))
    m = ref.post0(F.interpolate(ref.h2(m) + ref.v2(q2), size=(31, 31), mode="nearest"))
    print("U3 (p2 15)  ", "->", tuple(m.shape))
    m = ref.post1(F.interpolate(ref.h1(m) + ref.v1(q1), size=(61, 61), mode="nearest"))
    print("U2 (p1 31)  ", "->", tuple(m.shape))
    m = ref.post2(F.interpolate(ref.h0(m) + ref.v0(q0), size=(127, 127), mode="nearest"))
    print("U1 (p0 61)  ", "->", tuple(m.shape))
testing.compare("by hand vs refine_at", m, sharp, atol=1e-5)

# %% [markdown]
# ## The windows belong to the RoW
#
# At test time every backbone map is zero-padded — $p_0$ by 16, $p_1$ by 8, $p_2$ by 4 —
# and RoW $(r, c)$ takes rows $[4r, 4r+61)$, $[2r, 2r+31)$, $[r, r+15)$ of the padded maps
# (columns likewise). Let us cut them ourselves and compare:

# %%
def windows_ours(features, row, col):
    out = []
    for fmap, side, step, pad in [(features[0], 61, 4, 16), (features[1], 31, 2, 8),
                                  (features[2], 15, 1, 4)]:
        padded = F.pad(fmap, [pad, pad, pad, pad])  # zeros
        out.append(padded[:, :, step * row:step * row + side, step * col:step * col + side])
    return out


for name, a, b in zip(["p0", "p1", "p2"], windows_ours(out.features, r, c), (q0, q1, q2)):
    testing.compare(f"{name} window", a, b, atol=0, rtol=0)

# %% [markdown]
# Why those numbers? From chapter 2's walk through the backbone, feature $i$ of each map is
# centred on search-crop pixel
#
# * $p_0$: $2i + 3$ (stride 2), $p_1$: $4i + 3$ (stride 4), $p_2$: $8i + 7$ (stride 8).
#
# Unpadded, the windows of RoW $r$ start at $4r - 16$, $2r - 8$ and $r - 4$. So all three
# cover the same stretch of the crop, centred on $8r + 31$ — the centre of the RoW's
# 127-px window $[8r - 32, 8r + 95)$ (chapter 1):

# %%
def window_centres(row):
    """First and last crop pixel on which each window's features are centred."""
    spans = {}
    for name, side, start, (c0, j) in [("p0", 61, 4 * row - 16, (3, 2)),
                                       ("p1", 31, 2 * row - 8, (3, 4)),
                                       ("p2", 15, row - 4, (7, 8))]:
        spans[name] = (c0 + j * start, c0 + j * (start + side - 1))
    return spans


for row in (0, 12, 24):
    spans = window_centres(row)
    _, y0, _, y1 = figures.row_window(row, 0)  # rows [y0, y1) of the crop
    print(f"RoW {row:2d}: window [{y0}, {y1})  features centred on", spans)
    assert all((a + b) / 2 == 8 * row + 31 == (y0 + y1 - 1) / 2 for a, b in spans.values())

# %% [markdown]
# At the centre RoW (12, 12) the windows are the central parts of the unpadded maps —
# $p_0$[32:93], $p_1$[16:47], $p_2$[8:23] — i.e. the central 127 pixels of the crop. At the
# **edges** the window leaves the crop: for RoW (0, 0) the first 16 rows and columns of the
# $p_0$ window (8 of $p_1$, 4 of $p_2$) are padding zeros, for RoW (24, 24) the last ones.

# %%
testing.compare("p0 window at (12,12)", windows_ours(out.features, 12, 12)[0],
                p0[:, :, 32:93, 32:93], atol=0, rtol=0)
for row, col in [(0, 0), (24, 24)]:
    for w, pad in zip(ref.windows_at(out.features, row, col), (16, 8, 4)):
        inner = w[0, :, pad:-pad, pad:-pad]
        border = w[0, :, :pad, :] if row == 0 else w[0, :, -pad:, :]
        assert border.abs().max() == 0 and inner.abs().max() > 0
print("edge RoWs: padded rows are zero, the rest is the feature map")
with torch.no_grad():
    corner = model.refine_at(out, 0, 0)
assert tuple(corner.shape) == (1, 1, 127, 127)  # edge RoWs refine like any other

# %% [markdown]
# ## The training path: every RoW at once
#
# Refinement is trained on **143×143** search crops. Their features are $p_0$ 69×69,
# $p_1$ 35×35, $p_2$ 17×17; the adjust layer crops the 17-wide search feature to 9 (the
# released rule "crop when narrower than 20"; pysot crops to 7 here), the heads' 3×3
# convolution makes it 7, and the correlation with the 5×5 exemplar kernel leaves
# $3 \times 3$ RoWs. `Refine.forward_all` cuts all 9 windows with `F.unfold`, **without
# padding**, and decodes them in one batch.

# %%
x143 = x[:, :, 56:199, 56:199]  # the central 143 px of the search crop
with torch.no_grad():
    out143 = model.track(x143, exemplar)
    all_rows = model.refine.forward_all(out143.features, out143.mask_corr)  # (9, 1, 127, 127)
print("p0/p1/p2:", [tuple(t.shape[-2:]) for t in out143.features[:3]],
      "| xf", tuple(out143.xf.shape[-2:]), "| RoWs", tuple(out143.mask_corr.shape[-2:]),
      "| forward_all", tuple(all_rows.shape))
assert tuple(out143.mask_corr.shape[-2:]) == (3, 3) and tuple(all_rows.shape) == (9, 1, 127, 127)

# %% [markdown]
# How do the two paths relate? The padding only exists to give the RoWs of a 255 search
# their windows. RoW $c$ of a $g \times g$ grid ([glossary](index.md#glossary)) on a search
# crop of side $|x|$ crop pixels (255, or 143 in training) is centred on pixel
# $\lfloor |x|/2 \rfloor + 8(c - \lfloor g/2 \rfloor)$, so its 127-px window starts at
# $\lfloor |x|/2\rfloor - 8\lfloor g/2 \rfloor - 63$ for $c = 0$. A negative start must be padded:
# 32 px for the 255 search (16, 8, 4 feature pixels at strides 2, 4, 8), **0 px** for the
# 143 search.

# %%
def pad_px(search, g):
    return -(search // 2 - 8 * (g // 2) - 63)


print("pad for 255 / 25x25:", pad_px(255, 25), "px | for 143 / 3x3:", pad_px(143, 3), "px")
assert pad_px(255, 25) == 32 and pad_px(143, 3) == 0
assert tuple(pad_px(255, 25) // s for s in (2, 4, 8)) == model.refine.pads

# %% [markdown]
# So the training path must equal the test-time path with **padding 0**. We build a second
# `Refine` with `pads=(0, 0, 0)` and the same weights (a separate module, nothing of the
# library is changed) and compare RoW by RoW; forward_all orders its output (batch, row,
# col):

# %%
refine_pad0 = Refine(pads=(0, 0, 0))
refine_pad0.load_state_dict(model.refine.state_dict())
refine_pad0.eval()
with torch.no_grad():
    for row in range(3):
        for col in range(3):
            one = refine_pad0(out143.features, out143.mask_corr, row, col)
            testing.compare(f"RoW ({row},{col}) pad 0", one[0], all_rows[3 * row + col],
                            atol=1e-4)

# %% [markdown]
# With the test-time padding (16, 8, 4) on the 143 search, every window would be shifted
# by 32 pixels, off the RoW:

# %%
with torch.no_grad():
    shifted = model.refine_at(out143, 1, 1)  # the default pads (16, 8, 4)
diff = float((shifted[0] - all_rows[4]).abs().max())
print(f"centre RoW, pads (16, 8, 4) vs training path: max |diff| = {diff:.3f}")
assert diff > 1e-2

# %% [markdown]
# `SiamMask.forward(z, x, refine_all=True)` is the training call that does all of this:

# %%
with torch.no_grad():
    train_out = model(z, x143, refine_all=True)
testing.compare("forward(refine_all)", train_out["refine_logits"], all_rows, atol=1e-4)

# %% [markdown]
# ## Sharp vs base, at the same RoW
#
# The sharp checkpoint still contains the base model's 3969-channel mask head, so both
# masks of the chosen RoW can be computed: `mask_at` (63×63, two 1×1 layers on the RoW
# vector) and `refine_at` (127×127, with the backbone windows). Both cover the same 127-px
# window of the crop.

# %%
with torch.no_grad():
    base63 = model.mask_at(out, r, c)  # (1, 1, 63, 63)
wx0, wy0, wx1, wy1 = figures.row_window(r, c)
window = np.zeros((127, 127, 3), np.uint8)  # the RoW's window; zero outside the crop
sy0, sx0 = max(wy0, 0), max(wx0, 0)
sy1, sx1 = min(wy1, 255), min(wx1, 255)
window[sy0 - wy0:sy1 - wy0, sx0 - wx0:sx1 - wx0] = x_rgb[sy0:sy1, sx0:sx1]
print("base", tuple(base63.shape), "| sharp", tuple(sharp.shape), "| window", (wx0, wy0))
figures.image_strip([window, torch.sigmoid(base63[0, 0]), torch.sigmoid(sharp[0, 0])],
                    [f"RoW ({r},{c}) window", "base: 63x63", "sharp: 127x127"],
                    cmap="gray", vmin=0, vmax=1)

# %% [markdown]
# Even untrained, the difference in kind shows: the base mask is decoded from the RoW
# vector alone, so its pixels carry no spatial structure of the image; the sharp mask
# inherits edges from the $p_0$ and $p_1$ windows (stride 2 and 4). With trained weights
# this is what lets masks follow object contours (paper Table 5: the refinement of
# Pinheiro et al. matters most for the contour accuracy $\mathcal{F}_M$, less for the
# other measures).
#
# ## With trained weights
#
# The shipped SiamMask-Lite is trained in two stages (chapter 9): the base stage trains
# the mask head, the refine stage the refinement module. When the shipped weights come
# from the refine stage, the same comparison runs on them, at the RoW the lite model
# scores highest; weights from the base stage alone have no refinement module, and the
# cell says so.

# %%
net, trained = testing.lite_or_seeded()
if trained and net.refine is not None:
    with torch.no_grad():
        net_out = net.track(x, net.template(z))
        fg = net_out.score[0].view(2, 5, 25, 25).softmax(dim=0)[1].max(dim=0).values
        lr_, lc_ = (int(v) for v in np.unravel_index(int(fg.argmax()), fg.shape))
        lite63 = net.mask_at(net_out, lr_, lc_)  # (1, 1, 63, 63)
        lite127 = net.refine_at(net_out, lr_, lc_)  # (1, 1, 127, 127)
    assert tuple(lite63.shape) == (1, 1, 63, 63)
    assert tuple(lite127.shape) == (1, 1, 127, 127)
    wx0, wy0, wx1, wy1 = figures.row_window(lr_, lc_)
    window = np.zeros((127, 127, 3), np.uint8)
    sy0, sx0, sy1, sx1 = max(wy0, 0), max(wx0, 0), min(wy1, 255), min(wx1, 255)
    window[sy0 - wy0:sy1 - wy0, sx0 - wx0:sx1 - wx0] = x_rgb[sy0:sy1, sx0:sx1]
    fig = figures.image_strip(
        [window, torch.sigmoid(lite63[0, 0]), torch.sigmoid(lite127[0, 0])],
        [f"lite: RoW ({lr_},{lc_}) window", "mask head: 63x63", "refined: 127x127"],
        cmap="gray", vmin=0, vmax=1)
else:
    fig = None
    print("no trained refinement module in this build: the shipped SiamMask-Lite weights "
          "come from the base stage only" if trained else "no SiamMask-Lite weights")
fig

# %% [markdown]
# ## Recap
#
# * Refinement decodes one RoW: deconv to 15×15, then $U_3, U_2, U_1$ merge windows of
#   $p_2$ (15), $p_1$ (31), $p_0$ (61) and up-sample (nearest) to 127×127.
# * The three windows cover the same 127-px region of the search crop as the RoW, centred
#   on $8r + 31$; at test time the maps are zero-padded by 16/8/4 so edge RoWs work too.
# * Training decodes all RoWs of a 143 search at once with `unfold`, which is the
#   test-time path with padding 0 (verified RoW by RoW).
# * The sharp model still ships the 63×63 mask head; refinement replaces its output.
# * This chapter uses the seeded released network throughout: the module's exactness
#   against the released code is the point; the trained SiamMask-Lite refinement is shown
#   at the end.
#
# ## Exercises
#
# 1. Replace the nearest up-sampling with bilinear in a copy of the by-hand cell. How much
#    do the logits change? (Released weights were trained with nearest.)
# 2. Which search size would give a 5×5 grid of RoWs in the training path, and what
#    padding would the test-time path then need?
# 3. Count the multiply-adds of one refinement; compare with the 63×63 mask head at one RoW.
# 4. Drop the $v_0$ path (use zeros for the $p_0$ window). What does the mask lose?
