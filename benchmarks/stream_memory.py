"""Peak memory of the tracker over a long generated stream (memory must not grow with length).

Frames are generated lazily (a 30-frame synthetic sequence looped with a per-frame shift
of its pixels, so no frame is ever stored), fed to ``Tracker.track_sequence``, and the
process's resident set size is sampled every ``--every`` frames.

    python benchmarks/stream_memory.py --frames 10000 --model tiny --checkpoint ''
    python benchmarks/stream_memory.py --frames 10000 --checkpoint path/to/SiamMask_DAVIS.pth
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from siammask_edu import Tracker, build_model, load_released_checkpoint
from siammask_edu.data import make_synthetic_sequence


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def frame_stream(n: int, size: tuple[int, int]):
    seq = make_synthetic_sequence(n_frames=30, size=size, seed=0)
    for i in range(n):
        k = i % 60
        j = k if k < 30 else 59 - k  # ping-pong so that the motion stays continuous
        yield np.roll(seq.frames[j], shift=i % 7, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--model", default="sharp", help="preset when no checkpoint is given")
    ap.add_argument("--checkpoint", default="", help="released or own checkpoint (optional)")
    ap.add_argument("--size", default="480,854", help="H,W of the generated frames")
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split(","))
    model = (load_released_checkpoint(args.checkpoint) if args.checkpoint
             else build_model(args.model))
    tracker = Tracker(model, "davis")
    first = make_synthetic_sequence(n_frames=30, size=(h, w), seed=0).box
    print(f"model {model.config.name}, frames {args.frames} of {h}x{w}, threads {args.threads}")
    print(f"{'frames':>8} {'rss MiB':>9} {'elapsed s':>10}")
    t0 = time.perf_counter()
    start_rss = rss_mib()
    n = 0
    for n, _ in enumerate(tracker.track_sequence(frame_stream(args.frames, (h, w)), first), 1):
        if n % args.every == 0:
            print(f"{n:8d} {rss_mib():9.1f} {time.perf_counter() - t0:10.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tracked {n} frames; rss at start {start_rss:.1f} MiB, at end {rss_mib():.1f} MiB, "
          f"peak {peak:.1f} MiB")


if __name__ == "__main__":
    main()
