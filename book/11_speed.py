# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11. Speed
#
# **What you will build.** A per-frame time budget of the tracker: which part of a frame
# (crop, backbone, heads, refinement, post-processing) costs what, and which operators
# inside the network. Then the levers, each measured and each checked for what it does to
# the *result*: the exact fast path against the released work, threads, batching several
# objects into one forward pass, bfloat16, a GPU, and ONNX Runtime.
#
# Paper §4 "Timing" and Tables 2, 3 and 5 (35 fps on a Titan X); the released code's
# README (56 fps on an RTX 2080). The library: `siammask_edu.bench` (the
# `siammask-edu bench` command), `siammask_edu.timing`, `siammask_edu.multi` and
# `siammask_edu.export.onnx`.
#
# :::{note}
# Every number printed here is a measurement of *this run on this machine*. Speed is never
# asserted: the `assert`s check shapes, finiteness and that a faster path gives the same
# answer. Timings on a shared machine are noisy; the process CPU time, printed next to the
# wall-clock time, shows how much of a core the run actually got.
# :::
#
# Symbols as in the book's [glossary](index.md#glossary).
#
# *Run time* (measured on a 2-core machine, 2 torch threads, whole chapter): about 33 s
# as a fresh clone runs it (default settings, no `../shared`), 34 s with the
# project's data, 12 s in CI's short runs (1 thread).

# %%
# %matplotlib inline
import copy
import inspect
import os
import platform
import statistics
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from siammask_edu import bench, data, testing, timing
from siammask_edu.config import book_threads, fast_mode
from siammask_edu.multi import MultiTracker
from siammask_edu.paths import have_davis, have_fixtures
from siammask_edu.tracker import Tracker

torch.set_num_threads(book_threads())  # 2; 1 in CI; $SIAMMASK_EDU_THREADS sets it
threads0 = torch.get_num_threads()
n_frames = 4 if fast_mode() else 21  # the init frame + tracked frames
warmup = 1 if fast_mode() else 2  # tracked frames not timed


def cpu_flags():
    """The CPU's feature flags (Linux: /proc/cpuinfo; elsewhere an empty set)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


flags = cpu_flags()
print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
      f"cores | torch {torch.__version__}, {threads0} thread(s), ISA level "
      f"{torch.backends.cpu.get_cpu_capability()}")
print("bf16 instructions: "
      + ", ".join(f"{f} {'yes' if f in flags else 'no'}"
                  for f in ("avx512_bf16", "amx_bf16")))
load = os.getloadavg() if hasattr(os, "getloadavg") else None
print(f"load average (1 min) before timing: {load[0]:.2f}" if load else "load: unknown")

# %% [markdown]
# ## The frames and the two models
#
# The benchmark sequence is DAVIS-2016 `car-shadow` (854×480), decoded once by
# `bench.load_frames` **before** any timing (decoding a JPEG is not the tracker's work).
# Its frames are OpenCV BGR, so every tracker here is built with `color_order="bgr"`.
# Without DAVIS the chapter times the package's `bunny` clip (640×360) instead, from its
# own box: the network sees 255×255 crops either way, so only the crop and the paste-back
# of the mask depend on the frame size.
#
# Two networks: **sharp**, the released SiamMask with refinement (ResNet-50, the book's
# seeded checkpoint from the reference fixtures: random weights in the released layout),
# and **lite**, SiamMask-Lite (EfficientNet-Lite0): the shipped weights when this build
# has them, otherwise an untrained `build_model("lite")`. Speed does not depend on the
# values of the weights, only on the architecture, so random weights time exactly like
# trained ones — but they track nonsense, so ignore *where* the boxes go.

# %%
if have_davis(bench.SEQUENCE):
    frames, init_box = bench.load_frames(n_frames), bench.INIT_BOX
else:
    testing.missing_data_note("davis", "timing the shipped bunny clip instead of car-shadow")
    bunny = data.load_sample("bunny")
    frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in bunny.frames[:n_frames]]  # BGR
    init_box = bunny.box
frame_hw = frames[0].shape[:2]
if have_fixtures("siammask_sharp_seed1.f16.pth"):
    sharp, sharp_weights = bench.load_model("sharp")
else:  # untrained weights with BatchNorm statistics calibrated, so outputs stay finite
    sharp, _ = testing.released_layout_network()
    sharp_weights = "freshly initialised (no reference fixtures here)"
try:
    lite = Tracker.from_pretrained("lite", fast=True).model  # unfolded: every path below
    lite_weights = "shipped SiamMask-Lite weights"
except FileNotFoundError:
    lite, lite_weights = bench.load_model("lite")
models = {"sharp": sharp.eval(), "lite": lite.eval()}
weights = {"sharp": sharp_weights, "lite": lite_weights}
print(f"{len(frames)} frames {frames[0].shape} | init box {init_box}")
for name, m in models.items():
    n_par = sum(p.numel() for p in m.parameters())
    print(f"{name:5s} {n_par / 1e6:5.2f} M parameters | refinement: "
          f"{m.refine is not None} | {weights[name]}")
assert frames[0].shape[2:] == (3,) and frames[0].dtype == np.uint8
assert frame_hw == ((480, 854) if init_box == bench.INIT_BOX else (360, 640))

# %% [markdown]
# ## 1. Where a frame's time goes
#
# `bench.timed_track` is one `Tracker.track` step — the same `step.TrackStep`, run with a
# timing hook — cut into sections, each bracketed by a `timing.Stopwatch` (which synchronises the device before reading the clock, so that on
# a GPU asynchronous work is charged to the section that launched it). The sections are
# the ones of `siammask-edu bench`:
#
# | section | work |
# |---|---|
# | `crop` | the 255×255 search crop around the previous centre, to a tensor |
# | `backbone` | backbone + adjust layer on the crop |
# | `heads` | the three depth-wise correlations and heads (score, box, mask features) |
# | `refine` | refinement (or the mask head) at the chosen RoW only |
# | `post` | anchors, penalties, window, box update, paste-back, threshold, polygon |
#
# The helper below runs several trackers over the same frames **taking turns frame by
# frame** (A, B, A, B, ...), so that a burst of load from another process on a shared
# machine hits every configuration alike instead of one of them. It keeps every result
# (to compare the configurations' answers) and leaves the first `warmup` tracked frames
# untimed (oneDNN builds its kernels on the first call at each shape). Here it times the
# fast path and, alongside, the released path (the subject of section 2).

# %%
def timed_runs(configs, device="cpu"):
    """Track `frames` from init_box with several trackers in turn.

    configs: {label: {"model": ..., "threads": n, "follow": label, **Tracker kw}};
    "follow": restart every frame from that tracker's state (teacher forcing).
    Returns ({label: row of median ms}, {label: [TrackResult per frame]})."""
    trackers, sws, wall, cpu, results = {}, {}, {}, {}, {}
    for label, c in configs.items():
        kw = {k: v for k, v in c.items() if k not in ("model", "threads", "follow")}
        trackers[label] = Tracker(c["model"], "davis", device=device,
                                  color_order="bgr", **kw)
        trackers[label].init(frames[0], init_box)
        sws[label] = timing.Stopwatch(device)
        wall[label], cpu[label], results[label] = [], [], []
    try:
        for i, f in enumerate(frames[1:]):
            states = {k: (t.center, t.size) for k, t in trackers.items()}
            for label, c in configs.items():
                tr, sw = trackers[label], sws[label]
                if c.get("follow"):
                    tr.set_target(*states[c["follow"]])
                torch.set_num_threads(c.get("threads", threads0))
                if i == warmup:
                    sw.reset()
                c0, w0 = time.process_time(), time.perf_counter()
                if hasattr(tr.model, "backbone"):  # a PyTorch SiamMask: by section
                    results[label].append(bench.timed_track(tr, f, sw))
                else:  # another back-end (onnxruntime): the whole step
                    results[label].append(tr.track(f))
                timing.synchronize(device)
                if i >= warmup:
                    wall[label].append(1000 * (time.perf_counter() - w0))
                    cpu[label].append(1000 * (time.process_time() - c0))
    finally:
        torch.set_num_threads(threads0)
    rows = {}
    for label, c in configs.items():
        ms = sws[label].ms
        r = {k: statistics.median(ms[k]) if k in ms else float("nan")
             for k in bench.SECTIONS}
        r.update(total=statistics.median(wall[label]), cpu=statistics.median(cpu[label]),
                 fps=1000 / statistics.fmean(wall[label]),
                 threads=c.get("threads", threads0),
                 sections_sum=sum(sum(v) for v in ms.values()),
                 wall_sum=sum(wall[label]))
        rows[label] = r
    return rows, results


def print_rows(rows):
    print(f"{'':24s}" + "".join(f"{k:>9s}" for k in bench.SECTIONS)
          + f"{'total':>9s}{'fps':>7s}{'CPU ms':>8s}")
    for label, r in rows.items():
        print(f"{label:24s}" + "".join(f"{r[k]:9.1f}" for k in bench.SECTIONS)
              + f"{r['total']:9.1f}{r['fps']:7.2f}{r['cpu']:8.1f}")


fast_rows, fast_res, released_rows, released_res = {}, {}, {}, {}
for name, m in models.items():
    rows, res = timed_runs({"fast": {"model": m},
                            "released": {"model": m, "fast": False}})
    fast_rows[name], fast_res[name] = rows["fast"], res["fast"]
    released_rows[name], released_res[name] = rows["released"], res["released"]
print(f"median ms per frame over {n_frames - 1 - warmup} frames, {threads0} thread(s):")
print_rows({f"{k} (fast path)": r for k, r in fast_rows.items()})
for name in models:
    for r, res in ((fast_rows[name], fast_res[name]),
                   (released_rows[name], released_res[name])):
        assert len(res) == n_frames - 1
        assert all(x.mask.shape == frame_hw and np.isfinite(x.box).all() for x in res)
        assert r["sections_sum"] <= r["wall_sum"]  # sections lie inside each frame

# %%
fig, ax = plt.subplots(figsize=(7, 1.8))
for y, (name, r) in enumerate(fast_rows.items()):
    left = 0.0
    for j, k in enumerate(bench.SECTIONS):
        ax.barh(y, r[k], left=left, color=f"C{j}", label=k if y == 0 else None)
        left += r[k]
ax.set_yticks(range(len(fast_rows)), list(fast_rows))
ax.set_xlabel(f"wall-clock ms per frame (CPU, {threads0} thread(s), median)")
ax.legend(ncol=5, fontsize=8, loc="lower right")
plt.tight_layout()

# %% [markdown]
# The paper (§4, "Timing") says that "the highest computational burden comes from the
# feature extractor", and the split agrees: the **backbone** is most of a frame, then the
# heads (three 3×3 convolutions over the 31×31 search features, the correlations and the
# 1×1 layers), then the refinement of one RoW. Cropping and post-processing are a few
# milliseconds of NumPy and OpenCV.
#
# In context: the paper reports **35 fps** for SiamMask on an NVIDIA Titan X (Table 2; the
# "Timing" paragraph's sentence names the 35 and 40 fps of the two variants in the
# opposite order, Table 2 has SiamMask 35 and SiamMask-2B 40), i.e. 28.6 ms per frame; the
# released code's README gives **56 fps** on an RTX 2080 (17.9 ms). A CPU core is one to
# two orders of magnitude slower on the sharp model:

# %%
for name, r in fast_rows.items():
    print(f"{name:5s}: {r['total']:7.1f} ms/frame = {r['fps']:5.2f} fps on this CPU "
          f"({threads0} thread(s)) | {r['total'] / (1000 / 35):5.1f}x the paper's "
          f"Titan X time, {r['total'] / (1000 / 56):5.1f}x the RTX 2080 time")

# %% [markdown]
# ### Inside the network: the profiler
#
# `torch.profiler` records every operator of one tracked frame. *Self* CPU time is the time
# spent in the operator itself, not in the operators it calls. With `with_flops=True` it
# also counts the floating-point operations of convolutions and matrix products (two per
# multiply-add), so the achieved rate can be computed from two measurements.

# %%
from torch.profiler import ProfilerActivity, profile


def profile_frame(model, fast=True):
    tr = Tracker(model, "davis", color_order="bgr", fast=fast)
    tr.init(frames[0], init_box)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        t0 = time.perf_counter()
        tr.track(frames[1])
        ms = 1000 * (time.perf_counter() - t0)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return events, ms


prof = {}
for name, m in models.items():
    events, ms = profile_frame(m)
    gflop = sum(e.flops for e in events) / 1e9
    prof[name] = {"gflop": gflop, "ms": ms}
    total_self = sum(e.self_cpu_time_total for e in events)
    print(f"{name}: one frame, fast path, {ms:.0f} ms under the profiler | "
          f"{gflop:.2f} GFLOP counted | {gflop / ms * 1000:.1f} GFLOP/s achieved")
    print(f"  {'operator (top 6 by self CPU)':34s}{'self ms':>9s}{'share':>7s}{'calls':>7s}")
    for e in events[:6]:
        print(f"  {e.key:34s}{e.self_cpu_time_total / 1000:9.1f}"
              f"{e.self_cpu_time_total / total_self:7.0%}{e.count:7d}")
    assert gflop > 0 and all(e.self_cpu_time_total >= 0 for e in events)

# %% [markdown]
# Convolutions are nearly all of it. PyTorch's CPU back-end sends most 3×3 convolutions to
# oneDNN (`aten::mkldnn_convolution`) and the 1×1 ones (the ResNet bottlenecks' reduce and
# expand layers, EfficientNet's point-wise layers) to `aten::_slow_conv2d_forward`: for a
# 1×1 convolution that "slow" path is a single matrix product (no im2col needed), not a
# fallback to worry about. BatchNorm (`aten::native_batch_norm`) is still a separate pass
# over every feature map: the exact path keeps the released layers as they are (folding
# BatchNorm into the convolutions is `fast="fold_all"` and the ONNX export, below). The
# sharp model does more than ten times the arithmetic of lite per frame; the achieved GFLOP/s
# say how well each keeps a core busy (lite's thin depth-wise and 1×1 layers move more
# memory per multiply-add than ResNet's wide 3×3 convolutions).

# %% [markdown]
# ## 2. The exact fast path and the released work
#
# `Tracker(model, fast=True)` (the default) does less work than the released
# `siamese_track` and returns the same answer:
#
# * the **exemplar convolutions** of the three heads (their 3×3 convolution of the
#   template features into correlation kernels) depend only on the template: computed once
#   in `init`, not every frame;
# * the **dense mask head** (1×1 convolutions ending in 63·63 = 3969 channels at each of
#   the 25×25 RoWs; its last layer alone is 256·3969·625 ≈ 635 M multiply-adds in the
#   released head) is skipped: only the chosen RoW's mask is ever used, and it is computed
#   at that RoW alone (refinement, or the mask head on one 1×1 column);
# * the mask is pasted and thresholded only inside the chosen RoW's window, not over the
#   whole 854×480 frame.
#
# `fast=False` does the released work. Same frames, same init, timed in turn with the fast
# path in section 1:

# %%
rows = {}
for name in models:
    rows[f"{name} released"] = released_rows[name]
    rows[f"{name} fast"] = fast_rows[name]
print_rows(rows)
for name in models:
    rel, fst = released_rows[name], fast_rows[name]
    print(f"{name}: released / fast = {rel['total'] / fst['total']:.2f}x wall, "
          f"{rel['cpu'] / fst['cpu']:.2f}x CPU time | heads {rel['heads']:.1f} -> "
          f"{fst['heads']:.1f} ms")

# %%
for name in models:
    box_diff = max(np.abs(np.subtract(a.box, b.box)).max()
                   for a, b in zip(fast_res[name], released_res[name]))
    same_mask = all(np.array_equal(a.mask, b.mask)
                    for a, b in zip(fast_res[name], released_res[name]))
    same_row = all(a.row_col == b.row_col
                   for a, b in zip(fast_res[name], released_res[name]))
    print(f"{name}: {len(fast_res[name])} frames | max box difference {box_diff:.2e} px | "
          f"same RoW: {same_row} | identical masks: {same_mask}")
    assert box_diff < 1e-3 and same_mask and same_row

# %% [markdown]
# The box agrees to far below a pixel and the masks are identical bit for bit, on every
# frame tracked here (the equivalence tests check the fast path against the released
# implementation's recorded outputs). The saving is in `heads` and, less, in `post`; the
# backbone, the bulk, is the same work on both paths — if its column differs between the
# two rows, that is the machine (another process took the core for a while), not the
# tracker; the CPU-time column is the steadier one on a shared machine, and a few frames
# are a small sample. `Tracker(fast="fold_all")`
# additionally folds BatchNorm into the convolutions and switches to channels-last: faster
# on some CPUs, but not exact enough for the equivalence tests, so it is opt-in.
#
# **How far can an exact path go?** Not far on a CPU, because the work it can drop is
# small next to the backbone. Measured once on this machine kind with everything else
# paused (sharp, 2 threads, one 255×255 search): the search branch takes 204 ms, of which
# the ResNet-50 backbone is 164 ms, and 92% of the backbone is convolution. Removing all
# of the heads' and post-processing's extra work therefore cannot make a frame much more
# than ~1.2× faster. Faster *forms* of the same convolutions change the rounding:
# channels-last (NHWC) ran the backbone in 157 ms but moved the deepest feature by up to
# 7e-4, and oneDNN's pre-packed blocked layout (`torch.utils.mkldnn.to_mkldnn`) gave no
# gain (166 ms) with a 5e-4 difference — both beyond the 1e-4 the equivalence tests hold
# the network to, and on the seeded random model they move the box by up to 9e-3 px
# (tolerance 1e-3 px). The real speed-ups change the arithmetic on purpose: bfloat16
# (section 5), a smaller backbone (SiamMask-Lite), a GPU.

# %% [markdown]
# ## 3. Threads
#
# `torch.set_num_threads` sets how many cores one convolution may use (intra-op
# parallelism). Crop and post-processing do not change; the network's sections should.
# We run the fast path with 1 and 2 threads in turn on the same frames (`timed_runs`
# sets the count before each step and restores it at the end; in fast mode only for
# lite, to keep the chapter quick).

# %%
thread_models = {"lite": lite} if fast_mode() else models
thread_rows, thread_res = {}, {}
for name, m in thread_models.items():
    thread_rows[name], thread_res[name] = timed_runs(
        {1: {"model": m, "threads": 1}, 2: {"model": m, "threads": 2}})
print_rows({f"{name}, {k} thread(s)": r
            for name, rows in thread_rows.items() for k, r in rows.items()})
for name in thread_models:
    one, two = thread_rows[name][1], thread_rows[name][2]
    print(f"{name}: 1 -> 2 threads: wall {one['total'] / two['total']:.2f}x faster | "
          f"CPU time per frame {one['cpu']:.0f} -> {two['cpu']:.0f} ms "
          f"({two['cpu'] / two['total']:.2f} cores busy on average)")
assert torch.get_num_threads() == threads0

# %%
for name in thread_models:
    d = max(np.abs(np.subtract(a.box, b.box)).max()
            for a, b in zip(thread_res[name][1], thread_res[name][2]))
    print(f"{name}: 1 vs 2 threads, max box difference {d:.2e} px")
    assert all(np.isfinite(r.box).all() for r in thread_res[name][2])

# %% [markdown]
# Two threads can at best halve the network's sections, and only when the second core is
# free: the "cores busy" column is the process CPU time divided by the wall time. When
# another job holds the second core, the extra thread waits for it and the wall time
# barely moves — or grows, sometimes many times over: the threads of one convolution meet
# at a barrier, and every layer then waits for whichever thread was descheduled. Small layers (lite's depth-wise convolutions) split into too
# little work per thread to scale well either way. The thread count also changes the order
# of oneDNN's floating-point reductions, so the results can differ in the last bits (the
# released fixtures were recorded with 2 threads, which is why the tests pin 2).

# %% [markdown]
# ## 4. Batching: several objects in one forward pass
#
# The released DAVIS-2017 driver tracks each object with its own tracker: N objects cost N
# forward passes. `MultiTracker` cuts the N search crops, stacks them into one
# `(N, 3, 255, 255)` batch and runs the backbone and heads once, with the N exemplar
# kernels stacked; crops, refinement and post-processing stay per object. We measure
# **object-frames per second** with the lite model on boxes spread around the car (the
# boxes `siammask-edu bench --objects` uses).

# %%
x0, y0, w0, h0 = init_box
obj_boxes = [(x0 + 40 * np.cos(k) - 20, y0 + 30 * np.sin(k), w0 * 0.6, h0 * 0.6)
             for k in range(10)]
ns = (1, 2, 5) if fast_mode() else (1, 2, 5, 10)


n_check = 5  # batched vs independent trackers, compared on this N
multis = {n: MultiTracker(lite, "davis", color_order="bgr") for n in ns}
for n, mt in multis.items():
    mt.init(frames[0], obj_boxes[:n])
singles = [Tracker(lite, "davis", color_order="bgr") for _ in range(n_check)]
for t, b in zip(singles, obj_boxes):
    t.init(frames[0], b)
secs = {n: [] for n in [*ns, "independent"]}
multi_res = {n: [] for n in secs}
for i, f in enumerate(frames[1:]):  # the configurations take turns, frame by frame
    for n, times in secs.items():
        t0 = time.perf_counter()
        if n == "independent":
            multi_res[n].append([t.track(f) for t in singles])
        else:
            multi_res[n].append(multis[n].track(f))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
multi = {}
for n, v in secs.items():
    k = n_check if n == "independent" else n
    multi[n] = k * len(v) / sum(v)  # object-frames per second
    label = f"{k} independent Trackers" if n == "independent" else f"MultiTracker N = {k}"
    print(f"lite, {label:24s}: {multi[n]:6.2f} object-frames/s "
          f"({1000 * k / multi[n]:6.1f} ms per frame for all {k})")

# %%
bm, ind_res = multi_res[n_check], multi_res["independent"]
box_d = max(np.abs(np.subtract(a.box, b.box)).max()
            for fa, fb in zip(bm, ind_res) for a, b in zip(fa, fb))
ious = [np.logical_and(a.mask, b.mask).sum() / max(1, np.logical_or(a.mask, b.mask).sum())
        for fa, fb in zip(bm, ind_res) for a, b in zip(fa, fb)
        if a.mask.any() or b.mask.any()]
same_row = all(a.row_col == b.row_col for fa, fb in zip(bm, ind_res)
               for a, b in zip(fa, fb))
print(f"batched vs independent, N = {n_check}, {len(bm)} frames: same RoW {same_row} | "
      f"max box difference {box_d:.2e} px | min mask IoU {min(ious, default=1.0):.4f}")
assert len(bm) == n_frames - 1 and all(len(r) == n_check for r in bm)
assert same_row and box_d < 1e-3 and min(ious, default=1.0) > 0.99

# %% [markdown]
# The batched answer equals N independent trackers up to the float rounding of batched
# convolutions (same RoW, sub-millipixel boxes). Whether batching is *faster* depends on
# what limits a single crop. On a CPU core, one 255×255 crop already gives every
# convolution enough work to keep the core busy, so stacking N crops saves little more
# than per-call overhead, and the per-object crops, refinements and paste-backs do not
# batch at all: compare the N = 5 row with the five independent trackers. Batching pays
# where one crop leaves the hardware idle: many cores, and above all a GPU.

# %% [markdown]
# ## 5. Half precision: bfloat16
#
# `Tracker(..., precision="bf16")` runs the network calls under
# `torch.autocast("cpu", dtype=torch.bfloat16)`: convolutions and matrix products take
# bfloat16 inputs (8 exponent bits like float32, 8 mantissa bits instead of 24) and
# accumulate in float32; every output is converted back to float32 before
# post-processing, which is unchanged. Whether that is faster depends on the CPU: with
# **AMX** (Intel Sapphire Rapids and later: tile matrix units) or **AVX512-BF16**
# (`vdpbf16ps`, a bf16 dot product) oneDNN runs bf16 kernels natively; without them bf16
# is emulated and can be *slower* than float32. `precision="fp32"` is the default and the
# only exact path.
#
# To see the arithmetic's effect and not a drifting trajectory (with random weights one
# different RoW sends two runs apart), the bf16 tracker restarts every frame from the
# fp32 tracker's state (`set_target`, teacher forcing): each frame compares one step from
# the same state.

# %%
has_precision = "precision" in inspect.signature(Tracker.__init__).parameters
bf16_rows, bf16_cmp = {}, {}
if has_precision:
    for name, m in models.items():
        bf16_rows[name], res = timed_runs(
            {"fp32": {"model": m},
             "bf16": {"model": m, "precision": "bf16", "follow": "fp32"}})
        ref, out = res["fp32"], res["bf16"]
        box_d = [np.abs(np.subtract(a.box, b.box)).max()
                 for a, b in zip(ref, out)]  # px, per frame
        iou = [np.logical_and(a.mask, b.mask).sum()
               / max(1, np.logical_or(a.mask, b.mask).sum()) for a, b in zip(ref, out)]
        same = sum(a.row_col == b.row_col for a, b in zip(ref, out))
        bf16_cmp[name] = {"box": max(box_d), "box_med": statistics.median(box_d),
                          "iou": min(iou), "same_row": same}
        assert all(np.isfinite(r.box).all() and r.mask.shape == frame_hw for r in out)
    print_rows({f"{name} {k}": r for name, rows in bf16_rows.items()
                for k, r in rows.items()})
    for name, c in bf16_cmp.items():
        r = bf16_rows[name]
        print(f"{name}: fp32 / bf16 = {r['fp32']['total'] / r['bf16']['total']:.2f}x "
              f"wall, {r['fp32']['cpu'] / r['bf16']['cpu']:.2f}x CPU | same RoW on "
              f"{c['same_row']}/{n_frames - 1} frames | box difference median "
              f"{c['box_med']:.2f}, max {c['box']:.2f} px | min mask IoU {c['iou']:.3f}")
else:
    print("bf16 is not available in this version of siammask_edu "
          "(Tracker has no precision argument)")

# %% [markdown]
# Two things to read in these rows. **Speed:** bf16 only helps a network whose time is
# in large convolutions *and* on a CPU with bf16 instructions (the flags printed at the
# top). ResNet-50's wide 3×3 convolutions are the favourable case; lite's depth-wise and
# thin 1×1 layers move more memory per multiply-add, and the conversions to and from bf16
# are paid either way, so expect a smaller gain there, if any.
# **Answer:** bfloat16 keeps float32's range, so nothing overflows, but with about 3
# significant digits scores and box offsets move. How far a box moves depends on how
# sensitive the network is: the seeded *random* sharp weights, whose score maps have no
# clear peak and whose offsets are large, are an unfavourable case; check your trained
# model before relying on it. Use bf16 where throughput matters more than bit-exactness;
# keep fp32 (the default) to reproduce the released tracker. On a CUDA GPU
# `precision="fp16"` is accepted too.

# %% [markdown]
# ## 6. What a GPU changes
#
# On a GPU, kernels are launched asynchronously: `time.perf_counter()` around a call
# measures the *launch*, not the work. `timing.Stopwatch("cuda")` synchronises before
# reading the clock, and `timing.cuda_event_timer` records CUDA events around each call
# after a warm-up (and returns `None` without CUDA — no GPU number is ever made up). The
# CPU parts (crop, post-processing, the copy of the crop to the device) do not get
# faster; they become a large share of the frame.

# %%
gpu_rows = {}
if torch.cuda.is_available():
    dev = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(dev)}")
    precs = ("fp32", "fp16") if has_precision else ("fp32",)
    for name, m in models.items():
        mg = copy.deepcopy(m).to(dev)  # the CPU models stay on the CPU
        cfgs = {p: {"model": mg, **({"precision": p} if p != "fp32" else {})}
                for p in precs}
        rows, res = timed_runs(cfgs, device=dev)
        for p in precs:
            gpu_rows[f"{name} {p}"] = rows[p]
            assert all(np.isfinite(r.box).all() for r in res[p])
        z = torch.rand(1, 3, 127, 127, device=dev) * 255
        x = torch.rand(1, 3, 255, 255, device=dev) * 255
        with torch.inference_mode():
            ex = mg.template(z)
            ev = timing.cuda_event_timer(
                lambda m=mg, x=x, ex=ex: m.track(x, ex, mask_head=False), dev,
                warmup=5, repeats=20)
        print(f"{name}: network alone (search branch + heads, fp32, CUDA events): "
              f"median {statistics.median(ev):.2f} ms")
        del mg
    print_rows(gpu_rows)
else:
    print("no GPU (torch.cuda.is_available() is False): the GPU cells were skipped")

# %% [markdown]
# ### The GPU suite: one recorded run
#
# A GPU is lent to this project rarely and briefly, so everything the book wants from one
# is measured by one prepared command, `bash benchmarks/gpu_suite.sh OUT.json`
# (`siammask_edu.gpu_suite`): the three presets at fp32 / bf16 / fp16 autocast, with and
# without `torch.compile` of the backbone, for N = 1, 8 and 32 objects (one batched
# `MultiTracker` for N > 1), timed with CUDA events after a warm-up on the shipped `bunny`
# clip; and the training step's pairs per second. Its JSON is committed under
# `benchmarks/results/`; this cell reads it (CI dry-runs the same suite on a CPU, so the
# command cannot rot). *ms/frame* is the whole `track(frame)` call — crop, network,
# post-processing, copies — i.e. what a user waits for.

# %%
from siammask_edu import gpu_suite

recorded = gpu_suite.recorded_runs()
if not recorded:
    print("no recorded GPU-suite run found (benchmarks/results/ is in the git checkout, "
          "not in an installed wheel)")
for run in recorded:
    print(gpu_suite.format_tables(run))
    env = run["environment"]
    one = gpu_suite.row(run, "sharp")
    many = gpu_suite.row(run, "sharp", objects=32)
    best = max((r for r in run["tracking"] if r.get("status") == "ok" and r["objects"] == 1),
               key=lambda r: r["fps"])
    assert one is not None and many is not None
    print(f"\nsharp, fp32, one object on the {env['gpu']}: {one['mean_ms']:.1f} ms/frame (mean) = "
          f"{one['fps']:.0f} fps; the paper reports 35 fps on a Titan X "
          f"({one['fps'] / 35:.1f}x), the released code 56 fps on an RTX 2080 "
          f"({one['fps'] / 56:.1f}x) — other GPUs, other frames (DAVIS 854x480 there, "
          f"{'x'.join(map(str, run['settings']['frame_wh']))} here).")
    print(f"32 objects in one batch: {many['object_frames_per_s']:.0f} object-frames/s, "
          f"{many['object_frames_per_s'] / one['fps']:.1f}x one object's rate: one call's "
          f"fixed cost is shared by the batch.")
    print(f"fastest single-object row: {best['preset']} {best['precision']} compile="
          f"{best['compile']}: {best['median_ms']:.1f} ms/frame (median)")
    # each knob against its fp32 / eager twin, over every (preset, N) measured
    for label, key in (("bf16 autocast", dict(precision="bf16")),
                       ("fp16 autocast", dict(precision="fp16")),
                       ("torch.compile", dict(compiled=True))):
        ratios = []
        for r in run["tracking"]:
            if r.get("status") == "ok" and r["precision"] == "fp32" and not r["compile"]:
                other = gpu_suite.row(run, r["preset"], objects=r["objects"],
                                      **dict(dict(precision="fp32", compiled=False), **key))
                if other is not None:
                    ratios.append(r["mean_ms"] / other["mean_ms"])
        if ratios:
            print(f"{label}: speed-up over fp32 eager from {min(ratios):.2f}x to "
                  f"{max(ratios):.2f}x (median {statistics.median(ratios):.2f}x, "
                  f"{len(ratios)} configurations)")
    train = {(r["preset"], r["precision"]): r for r in run["training"] if r.get("status") == "ok"}
    if ("lite", "fp32") in train:
        r = train[("lite", "fp32")]
        print(f"training lite on the GPU: {r['pairs_per_s']:.0f} pairs/s, "
              f"{r['pairs_per_s'] / r['sampler_pairs_per_s_one_process']:.1f}x what one CPU "
              f"process samples ({r['sampler_pairs_per_s_one_process']:.0f} pairs/s): feed it "
              f"with that many DataLoader workers or more.")

# %% [markdown]
# Read the table with its limits in mind. A tracked frame is a chain of small steps —
# a crop on the CPU, a copy, a few convolutions on batches of 1 to 32 crops, the
# post-processing on the CPU — so a GPU that multiplies bf16 matrices at hundreds of
# TFLOP/s is far from its peak here, and the knobs that speed up large models
# (reduced precision, compilation) move these rows only a little, in either direction:
# autocast adds casts that can cost more than the arithmetic they save, and compiled
# kernels help most where the network's share of the frame is largest. The ratios
# printed above are this run's measurement; run the suite on your GPU before choosing.
# The `sharp` and `base` rows use seeded random weights (speed depends on the
# architecture, not on the values), the `lite` rows the shipped weights.

# %% [markdown]
# ## 7. ONNX and ONNX Runtime
#
# `siammask_edu.export.onnx.export_onnx` writes the three graphs a tracker needs (opset
# 17, BatchNorm folded): **exemplar** (crop → template features and the three heads'
# kernels, once per target), **search** (crop + kernels → score, box offsets, mask
# correlation features and the backbone maps refinement needs) and **mask** (the mask of
# one RoW: refinement of its windows, or the mask head on its 1×1 column). `check_onnx` runs onnxruntime and PyTorch on the same random input and
# reports the largest difference per output; `OnnxModel` puts the graphs behind the
# interface `Tracker` calls, so `Tracker(OnnxModel(...))` tracks on onnxruntime.

# %%
try:
    import onnx  # noqa: F401
    import onnxruntime
except ImportError:
    onnxruntime = None
    print("onnx / onnxruntime are not installed (pip install siammask-edu[export]): "
          "the ONNX cells were skipped")

onnx_row = None
if onnxruntime is not None:
    from siammask_edu import testing
    from siammask_edu.export.onnx import OnnxModel, check_onnx, export_onnx

    tiny = testing.tiny_model(seed=1)
    tiny_dir = tempfile.mkdtemp(prefix="onnx_tiny_")
    t0 = time.perf_counter()
    paths = export_onnx(tiny, tiny_dir)
    print(f"tiny exported in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{g} {p.stat().st_size / 1024:.0f} KiB" for g, p in paths.items()))
    diff = check_onnx(tiny, tiny_dir)
    for k, v in diff["abs"].items():
        print(f"  {k:12s} max |onnxruntime - torch| = {v:.2e}  "
              f"(relative {diff['rel'][k]:.1e})")
    assert set(paths) == {"exemplar", "search", "mask"}
    assert diff["rel"]["max"] < 1e-4

# %% [markdown]
# Differences of order 1e-6 relative: the same arithmetic in a different order (and with
# BatchNorm folded). Now the lite model on onnxruntime as a tracker, on the same frames as
# the PyTorch fast path and, for a like-for-like comparison, `fast="fold_all"` (PyTorch
# with BatchNorm folded too). If lite has refinement, `OnnxModel` must be given its
# windows (64/32/16, not the released 61/31/15):

# %%
if onnxruntime is not None:
    lite_dir = tempfile.mkdtemp(prefix="onnx_lite_")
    export_onnx(lite, lite_dir)
    r = lite.refine
    windows = None if r is None else (r.windows, r.steps, r.pads)
    om = OnnxModel(lite_dir, lite.config, refine_windows=windows, threads=threads0)
    onnx_rows, res = timed_runs({"onnxruntime": {"model": om},
                                 "fast": {"model": lite},
                                 "fold_all": {"model": lite, "fast": "fold_all"}})
    onnx_row, ort_res = onnx_rows["onnxruntime"], res["onnxruntime"]
    for k, r in onnx_rows.items():
        print(f"lite, {k:12s} ({threads0} thread(s)): {r['total']:6.1f} ms/frame "
              f"({r['fps']:5.2f} fps)")
    d = max(np.abs(np.subtract(a.box, b.box)).max() for a, b in zip(res["fast"], ort_res))
    same = sum(a.row_col == b.row_col for a, b in zip(res["fast"], ort_res))
    print(f"onnxruntime vs PyTorch fast path: same RoW on {same}/{len(ort_res)} frames | "
          f"max box difference {d:.2e} px")
    assert all(np.isfinite(x.box).all() for x in ort_res)
    assert same == len(ort_res) and d < 1e-2

# %% [markdown]
# ONNX Runtime is a deployment path: no Python model code, graph-level optimisations
# (the exported graphs already have BatchNorm folded; onnxruntime fuses activations into
# the convolutions and has its own depth-wise kernels) and other execution providers
# (CUDA, TensorRT, OpenVINO, mobile) behind the same three graphs. Compare it with the
# `fold_all` row, which also folds BatchNorm; which back-end wins depends on the model and
# the machine, so measure.

# %% [markdown]
# ## 8. What this run measured
#
# The numbers of *this run on this machine* (milliseconds per frame, median after the
# warm-up; the batched rows in object-frames per second). Compare rows of the same
# section (§): they were timed in turn on the same frames; rows of different sections
# ran at different moments, and on a shared machine the load may have changed between
# them.

# %%
summary = []  # (section, configuration, row)
for name in models:
    summary.append((2, f"{name}, released, fp32, {threads0} thr", released_rows[name]))
    summary.append((2, f"{name}, fast, fp32, {threads0} thr", fast_rows[name]))
for name, rows in thread_rows.items():
    for k, r in rows.items():
        summary.append((3, f"{name}, fast, fp32, {k} thr", r))
for name, rows in bf16_rows.items():
    for k, r in rows.items():
        summary.append((5, f"{name}, fast, {k}, {threads0} thr", r))
for n, ofps in multi.items():  # object-frames/s in the fps column
    k = n_check if n == "independent" else n
    label = f"lite, {k} Trackers" if n == "independent" else f"lite, MultiTracker N = {k}"
    summary.append((4, label, {"total": 1000 * k / ofps, "fps": ofps, "cpu": None}))
for label, r in gpu_rows.items():
    summary.append((6, f"{label}, GPU", r))
if onnx_row is not None:
    for k, r in onnx_rows.items():
        summary.append((7, f"lite, {k}, {threads0} thr", r))
summary.sort(key=lambda row: row[0])
print(f"{'§':>2s}  {'configuration':32s}{'ms/frame':>10s}{'fps':>8s}{'CPU ms':>8s}")
for sec, label, r in summary:
    cpu_ms = "  (object-frames/s)" if r["cpu"] is None else f"{r['cpu']:8.1f}"
    print(f"{sec:2d}  {label:32s}{r['total']:10.1f}{r['fps']:8.2f}{cpu_ms}")
print(f"peak resident memory of this process: {timing.peak_rss_mib():.0f} MiB")
if load:
    print(f"load average (1 min) now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
assert all(np.isfinite(r["total"]) and r["total"] > 0 for _, _, r in summary)

# %% [markdown]
# For the full table — each configuration in a fresh process (its own thread count and a
# clean peak-memory reading), 40 frames, more presets — run
#
# ```
# siammask-edu bench --presets sharp base lite --threads 1 2 --paths released fast
# ```
#
# (`--objects 1 2 5 10` adds the batched rows, `--precision fp32 bf16` the bf16 rows,
# `--json out.json` keeps them, `--device cuda` times a GPU).
#
# ## Recap
#
# * Time a tracker per section with a synchronising stopwatch, after a warm-up, on frames
#   decoded beforehand; report wall time *and* CPU time, and the machine.
# * The backbone is most of a frame; inside it, convolutions are nearly all of it
#   (`torch.profiler`, self CPU time; FLOPs counted with `with_flops=True`).
# * The exact fast path drops work whose result is never used (per-frame exemplar
#   convolutions, the dense 3969-channel mask head, full-frame thresholding) and gives
#   identical boxes and masks.
# * Threads help only as far as free cores and layer sizes allow; batching N objects
#   raises object-frames per second; bf16 pays off only with bf16 hardware and is not
#   exact; on a GPU, time with CUDA events or synchronise.
# * ONNX export gives three graphs that agree with PyTorch to ~1e-6 relative and track on
#   onnxruntime.
#
# ## Exercises
#
# 1. Profile the released path (`fast=False`) of the sharp model. Which operator appears
#    that the fast path never runs, and how many GFLOP does it add per frame?
# 2. Count the multiply-adds of the whole dense mask head by hand (both 1×1 layers, at
#    25×25 RoWs) and compare with the difference you measured in exercise 1.
# 3. Run `siammask-edu bench --presets sharp --threads 1 2 --paths fast fold_all`. How
#    much does folding BatchNorm and channels-last buy the sharp model, and how far do the
#    boxes move against the fast path?
# 4. With `MultiTracker(..., max_batch=k)`, find the batch size beyond which
#    object-frames per second stop growing on your machine.
# 5. Time `precision="bf16"` with the bf16 autocast only around the backbone (copy
#    `bench.timed_track` into a cell). Is the backbone where all of the gain is?
