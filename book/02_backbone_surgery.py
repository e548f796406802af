# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Backbone surgery: from ResNet-50 to Table 6
#
# **What you will build.** Starting from a standard ResNet-50 you will make, change by
# change, the backbone that SiamMask runs (paper Table 6 plus the released details): output
# stride 8 instead of 32, odd feature sizes centred on the crop, the same receptive field.
# You will compute every output size and the receptive field by hand and check them against
# the network, load ImageNet-style weights into it, and end at the adjust layer and the
# 25×25 response.
#
# Symbols as in the book's [glossary](index.md#glossary); where the paper and the
# released code differ, and which side the library follows:
# [paper vs code](paper_vs_code.md).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 4 s
# as a fresh clone runs it (default settings, no `../shared`), 5 s with the
# project's data, 5 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import numpy as np
import torch
from torch import nn

from siammask_edu import build_model, testing
from siammask_edu.config import TrackerConfig, book_threads
from siammask_edu.models import AdjustLayer, ResNetBackbone, load_torchvision_weights
from siammask_edu.viz import figures

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it
_ = torch.manual_seed(0)

# %% [markdown]
# ## Two layouts of one class
#
# `ResNetBackbone(layout="torchvision")` is torchvision's `resnet50` trunk (same layers,
# same key names, with layer4; no pooling or classifier). `layout="released"` is what
# SiamMask runs. Both return the stage outputs `p0` (conv1+BN+ReLU, before the max-pool),
# `p1` (layer1 = conv2_x), `p2` (layer2 = conv3_x), `p3` (layer3 = conv4_x), and `p4`
# (layer4) for torchvision.

# %%
tv = ResNetBackbone(layout="torchvision").eval()
rel = ResNetBackbone(layout="released").eval()
z = torch.rand(1, 3, 127, 127) * 255  # an exemplar-sized input
x = torch.rand(1, 3, 255, 255) * 255  # a search-sized input
with torch.no_grad():
    tv_z, tv_x, rel_z, rel_x = tv(z), tv(x), rel(z), rel(x)
names = ["p0 conv1", "p1 layer1", "p2 layer2", "p3 layer3", "p4 layer4"]
print(figures.feature_shapes_table(
    {n: [a, b, c, d] for n, a, b, c, d in
     zip(names, tv_z, tv_x, rel_z + [None], rel_x + [None])},
    ["torchvision 127", "torchvision 255", "released 127", "released 255"]))

# %%
assert [f.shape[-1] for f in rel_z] == [61, 31, 15, 15]  # Table 6, exemplar column
assert [f.shape[-1] for f in rel_x] == [125, 63, 31, 31]  # Table 6, search column
assert [f.shape[-1] for f in tv_z] == [64, 32, 16, 8, 4]
assert rel.strides == [2, 4, 8, 8] and tv.strides == [2, 4, 8, 16]

# %% [markdown]
# ## The changes, one by one
#
# | where | torchvision | released SiamMask | effect |
# |---|---|---|---|
# | conv1 | 7×7 s2 padding 3 | padding **0** | 127 → 61 (odd), no zero border |
# | layer2.0 3×3 | s2 padding 1 | padding **0** | 31 → 15 (odd) |
# | layer2.0 downsample | 1×1 s2 | **3×3** s2 padding 0 | the shortcut must match 15 |
# | layer3.0 3×3 | s2 | **s1** | stride stays 8 |
# | layer3.1–5 3×3 | dilation 1 | **dilation 2**, padding 2 | receptive field kept |
# | layer3.0 downsample | 1×1 s2 | **3×3** s1 padding 1 | released detail |
# | layer4, avgpool, fc | present | **absent** | |
#
# The paper states the stride-1 / dilation-2 change (Appendix A); the paddings and the 3×3
# shortcuts are in the released code only (`released-implementation.md` §1.1). We can read
# the (kernel, stride, padding, dilation) of every layer on the main path straight from the
# modules. The 1×1 convolutions change neither size nor receptive field, so only the
# 3×3 convolutions, conv1 and the max-pool matter.

# %%
def conv_spec(m):
    """(kernel, stride, padding, dilation) of a Conv2d or MaxPool2d."""
    values = (m.kernel_size, m.stride, m.padding, m.dilation)
    return tuple(v if isinstance(v, int) else v[0] for v in values)


def main_path(bb):
    """Name and spec of every size-changing layer on the backbone's main path."""
    path = [("conv1", conv_spec(bb.conv1)), ("maxpool", conv_spec(bb.maxpool))]
    stages = ["layer1", "layer2", "layer3"] + (["layer4"] if hasattr(bb, "layer4") else [])
    for stage in stages:
        for i, block in enumerate(getattr(bb, stage)):
            path.append((f"{stage}.{i}", conv_spec(block.conv2)))
    return path


released_path = main_path(rel)
for name, spec in released_path:
    print(f"{name:9s} k={spec[0]} s={spec[1]} p={spec[2]} d={spec[3]}")

# %% [markdown]
# Table 6 plus the released details, written by hand, must match what the module holds:

# %%
released_by_hand = (
    [("conv1", (7, 2, 0, 1)), ("maxpool", (3, 2, 1, 1))]
    + [(f"layer1.{i}", (3, 1, 1, 1)) for i in range(3)]
    + [("layer2.0", (3, 2, 0, 1))] + [(f"layer2.{i}", (3, 1, 1, 1)) for i in (1, 2, 3)]
    + [("layer3.0", (3, 1, 1, 1))] + [(f"layer3.{i}", (3, 1, 2, 2)) for i in range(1, 6)]
)
assert released_path == released_by_hand

# %% [markdown]
# ## Output sizes and receptive field, step by step
#
# For a layer with kernel $k$, stride $s$, padding $p$ and dilation $d$, the effective
# kernel is $k_e = d(k-1)+1$ and
#
# * output size: $n' = \lfloor (n + 2p - k_e)/s \rfloor + 1$;
# * *jump* (distance in input pixels between neighbouring outputs): $j' = j\,s$;
# * receptive field: $r' = r + (k_e - 1)\,j$;
# * centre of output 0, in input pixels: $c' = c + \left(\tfrac{k_e-1}{2} - p\right) j$.
#
# We start from the image ($n$ = 127 or 255, $j = 1$, $r = 1$, $c = 0$).

# %%
def walk(path, n):
    """Rows (name, size, jump, receptive field, centre of output 0) along a path."""
    j, r, c, rows = 1, 1, 0.0, []
    for name, (k, s, p, d) in path:
        ke = d * (k - 1) + 1
        n = (n + 2 * p - ke) // s + 1
        r = r + (ke - 1) * j
        c = c + ((ke - 1) / 2 - p) * j
        j = j * s
        rows.append((name, n, j, r, c))
    return rows


print(f"{'layer':9s} {'127':>4s} {'255':>4s} {'jump':>5s} {'RF':>4s} {'centre0':>8s}")
for (name, n127, j, r, c), (_, n255, *_) in zip(walk(released_path, 127),
                                                walk(released_path, 255)):
    print(f"{name:9s} {n127:4d} {n255:4d} {j:5d} {r:4d} {c:8.1f}")

# %% [markdown]
# The computed sizes agree with the network at every stage:

# %%
def stage_sizes(rows):
    last = {}
    for name, n, *_ in rows:
        last[name.split(".")[0]] = n
    return [last["conv1"], last["layer1"], last["layer2"], last["layer3"]]


assert stage_sizes(walk(released_path, 127)) == [f.shape[-1] for f in rel_z]
assert stage_sizes(walk(released_path, 255)) == [f.shape[-1] for f in rel_x]
tv_path = main_path(tv)
assert stage_sizes(walk(tv_path, 127)) == [f.shape[-1] for f in tv_z[:4]]
tv_rows = {row[0]: row for row in walk(tv_path, 127)}
rf_rel, rf_tv = walk(released_path, 127)[-1][3], tv_rows["layer3.5"][3]
print("receptive field of p3: released", rf_rel, "| torchvision layer3", rf_tv)
assert rf_rel == rf_tv == 267

# %% [markdown]
# Three things to read from the table:
#
# 1. **Stride 8, same receptive field.** torchvision's layer3 has jump 16; the released
#    layer3 keeps jump 8 and makes up with dilation 2, so its receptive field is the same
#    267 pixels. Twice the resolution, the same context.
# 2. **Centred grids.** With padding 0 in conv1 and layer2, output 0 of p2/p3 is centred on
#    input pixel 7 and neighbours are 8 apart, so the 15 exemplar features are centred on
#    pixels 7, 15, …, 119: feature 7 sits exactly on pixel 63, the crop centre. torchvision's
#    layer3 grid (0, 16, 32, …) has no feature at the centre of a 127 crop.
# 3. **Odd sizes.** 15 and 31 have a middle element; correlating them puts a RoW exactly at
#    the centre of the search crop (chapter 4).

# %%
_, n3, j3, _, c3 = walk(released_path, 127)[-1]
assert c3 + j3 * (n3 // 2) == 63  # middle exemplar feature -> crop centre (127 px)
_, n3, j3, _, c3 = walk(released_path, 255)[-1]
assert c3 + j3 * (n3 // 2) == 127  # middle search feature -> crop centre (255 px)
_, n3, j3, _, c3 = tv_rows["layer3.5"]
print("torchvision layer3 centres on a 127 crop:", [c3 + j3 * i for i in range(n3)])

# %% [markdown]
# Why a 3×3 shortcut in layer2? The residual branch must produce the same size as the main
# branch. With the main 3×3 stride-2 convolution unpadded, a 1×1 stride-2 shortcut would
# give a different size:

# %%
main_31 = (31 + 2 * 0 - 3) // 2 + 1  # 3x3 s2 p0
shortcut_1x1 = (31 - 1) // 2 + 1  # 1x1 s2
shortcut_3x3 = (31 - 3) // 2 + 1  # 3x3 s2 p0 (released)
print("main", main_31, "| 1x1 shortcut", shortcut_1x1, "| 3x3 shortcut", shortcut_3x3)
assert main_31 == shortcut_3x3 != shortcut_1x1

# %% [markdown]
# ### Measuring the receptive field
#
# The formula can be checked with autograd: the gradient of one output feature with respect
# to the input is non-zero exactly on that feature's receptive field, provided nothing in
# between zeroes it. On a narrow copy (width 8; the geometry does not depend on the width)
# we make every convolution weight positive, so every ReLU passes, and swap the max-pool for
# an average pool of the same footprint (a max-pool routes its gradient to one winner per
# window, which would hide most of the field). This changes a *local* instance only.

# %%
def measured_rf(layout, size=383):
    bb = ResNetBackbone(width=8, layout=layout).eval()
    bb.maxpool = nn.AvgPool2d(3, stride=2, padding=1)  # same footprint as the max-pool
    for m in bb.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0 / m.weight[0].numel())
    img = torch.ones(1, 3, size, size, requires_grad=True)
    p3 = bb(img)[3]
    mid = p3.shape[-1] // 2
    p3[0, 0, mid, mid].backward()
    rows = (img.grad[0].abs().sum(0) > 0).any(dim=1).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


rf_measured = {layout: measured_rf(layout) for layout in ("released", "torchvision")}
print("measured receptive field of p3:", rf_measured)
assert rf_measured == {"released": 267, "torchvision": 267}

# %% [markdown]
# ## ImageNet weights
#
# The paper's backbone is pre-trained on ImageNet. Because the released layout keeps
# torchvision's layer names, a torchvision `resnet50` state dict loads into it by name,
# except where the shapes differ: the two 3×3 shortcuts, which must be learned (the
# released project ships its own pre-trained `resnet.model` for that reason). The book
# runs offline, so the state dict of our torchvision-layout build stands in for the
# ImageNet file; a real one (`torchvision.models.resnet50(weights=...)`) loads the same
# way and additionally reports its `fc.*` keys as unused.

# %%
imagenet_standin = tv.state_dict()
fresh = ResNetBackbone(layout="released")
report = load_torchvision_weights(fresh, imagenet_standin)
print({k: len(v) for k, v in report.items()})
print("do not fit:")
for line in report["shape_mismatch"]:
    print("  ", line)
print("unused (first 3):", report["unused"][:3], "... all from layer4:",
      all(k.startswith("layer4.") for k in report["unused"]))
assert [s.split(":")[0] for s in report["shape_mismatch"]] == [
    "layer2.0.downsample.0.weight", "layer3.0.downsample.0.weight"]
assert report["missing"] == []

# %%
loaded = fresh.state_dict()
testing.compare("layer3.5.conv2.weight", loaded["layer3.5.conv2.weight"],
                imagenet_standin["layer3.5.conv2.weight"], atol=0, rtol=0)
testing.compare("bn1.running_var", loaded["bn1.running_var"],
                imagenet_standin["bn1.running_var"], atol=0, rtol=0)
assert loaded["layer2.0.downsample.0.weight"].shape == (512, 256, 3, 3)

# %% [markdown]
# The same 3×3 weights work in both layouts: a kernel does not care about its padding or
# dilation. What changes is *where* it looks, so a network pre-trained at stride 32 needs
# fine-tuning at stride 8; SiamMask's training does that (with a 10× smaller learning rate
# for the backbone).
#
# ## The adjust layer and the response size
#
# On top of p3 sits the **adjust** layer: a 1×1 convolution 1024 → 256 with BatchNorm and
# no ReLU. The paper says its parameters are not shared between the exemplar and the search
# branch; in the released code one adjust layer serves both (our `model.neck`). The
# released layer then **crops the exemplar feature**: when a feature map is narrower than
# 20, 4 pixels are cut from every side, 15 → 7. The search feature (31) is left alone.

# %%
adjust = AdjustLayer(1024, 256, crop=4).eval()
with torch.no_grad():
    zf, xf = adjust(rel_z[3]), adjust(rel_x[3])
print("zf", tuple(zf.shape), "| xf", tuple(xf.shape))
assert zf.shape[-1] == 7 and xf.shape[-1] == 31

# %% [markdown]
# Each head first applies an unpadded 3×3 convolution (7 → 5 and 31 → 29) and then the
# depth-wise correlation (chapter 3), $29 - 5 + 1 = 25$. The paper keeps the whole 15×15
# exemplar: $29 - 13 + 1 = 17$, its 17×17 response. The `paper` preset builds that variant.

# %%
def response_size(exemplar_feature, search_feature=31):
    return (search_feature - 2) - (exemplar_feature - 2) + 1


print("released:", response_size(7), "| paper:", response_size(15))
assert response_size(7) == TrackerConfig().score_size == 25
assert response_size(15) == 17

# %%
paper = build_model("paper")
with torch.no_grad():
    paper_ex = paper.template(z)
    paper_out = paper.track(x, paper_ex)
print("paper preset: zf", tuple(paper_ex.zf.shape), "| score", tuple(paper_out.score.shape))
assert paper_ex.zf.shape[-1] == 15
assert tuple(paper_out.score.shape) == (1, 10, 17, 17)

# %% [markdown]
# Why crop? The exemplar crop holds the target *and* context (chapter 1); its central 7×7
# features are centred on crop pixels 39…87, on the target rather than on the context. The cropped kernel is
# smaller, so the response is larger and covers more of the search image: RoW centres span
# $8 \times 24 = 192$ crop pixels instead of $8 \times 16 = 128$.

# %%
centres_25 = 127 + 8 * (np.arange(25) - 12)
centres_17 = 127 + 8 * (np.arange(17) - 8)
print("25x25 RoW centres:", centres_25[[0, -1]], "| 17x17:", centres_17[[0, -1]])
_, n3, j3, _, c3 = walk(released_path, 127)[-1]
kept = c3 + j3 * np.arange(4, n3 - 4)  # exemplar features kept by the crop
print("exemplar features kept by the crop are centred on pixels", kept)
assert list(kept[[0, -1]]) == [39.0, 87.0]

# %% [markdown]
# ## Recap
#
# * SiamMask's backbone is ResNet-50 up to layer3 with stride 8: layer3 has stride 1 and
#   dilation 2, which keeps the 267-pixel receptive field of the stride-16 original.
# * Released details not in the paper: conv1 and the layer2 3×3 convolution are unpadded,
#   so feature sizes are odd (61/31/15/15 and 125/63/31/31) and centred on the crop; the
#   two shortcuts are 3×3, the only weights ImageNet checkpoints cannot provide.
# * The adjust layer (1×1, 256, no ReLU) and a 4-pixel crop of the exemplar feature give
#   the released 25×25 response; the paper's uncropped 15×15 exemplar gives 17×17.
#
# ## Exercises
#
# 1. Put padding 3 back into conv1 of a local copy. Which sizes change, and where is the
#    centre of output 0 now?
# 2. Use dilation 1 in layer3 of the released layout. What happens to the receptive field?
#    Check it with `measured_rf`-style autograd.
# 3. Keep layer4 with stride 1 and dilation 4. What are its receptive field and its cost?
# 4. The paper's variant keeps the 15×15 exemplar feature (`build_model("paper")`, no
#    crop). Run a 127×127 exemplar and a 255×255 search through it and check that its
#    score map is 17×17, as `response_size(15)` says. RoW centres lie 8 px apart around
#    the centre of the search crop: how far from that centre is the outermost RoW centre
#    with a 17×17 grid, and with the released 25×25 one?
