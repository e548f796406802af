"""Time one SiamMask forward: template (once) + search + refine at one RoW.

Prints a table (median and min over repeats, milliseconds) for each preset and thread
count. Speed is measured here, never asserted in unit tests.

    python benchmarks/network_forward.py --presets sharp base --threads 1 2 --repeats 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from siammask_edu import build_model


def time_preset(name: str, threads: int, repeats: int, warmup: int = 2) -> dict:
    torch.set_num_threads(threads)
    model = build_model(name)
    z = torch.rand(1, 3, 127, 127) * 255
    x = torch.rand(1, 3, 255, 255) * 255
    rows = {"template": [], "search": [], "refine": []}
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            ex = model.template(z)
            t1 = time.perf_counter()
            out = model.track(x, ex)
            t2 = time.perf_counter()
            if model.refine is not None:
                model.refine_at(out, 12, 12)
            else:
                model.mask_at(out, 12, 12)
            t3 = time.perf_counter()
            if i >= warmup:
                rows["template"].append(t1 - t0)
                rows["search"].append(t2 - t1)
                rows["refine"].append(t3 - t2)
    res = {"preset": name, "threads": threads}
    for k, v in rows.items():
        res[f"{k}_ms_median"] = 1000 * statistics.median(v)
        res[f"{k}_ms_min"] = 1000 * min(v)
    total = [a + b + c for a, b, c in zip(*rows.values())]
    res["total_ms_median"] = 1000 * statistics.median(total)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["sharp", "base"])
    ap.add_argument("--threads", nargs="+", type=int, default=[2])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} default threads")
    rows = [time_preset(p, t, args.repeats) for p in args.presets for t in args.threads]
    head = f"{'preset':8} {'thr':>3} {'template':>9} {'search':>9} {'refine/mask':>11} {'total':>9}"
    print(head)
    for r in rows:
        print(f"{r['preset']:8} {r['threads']:>3} {r['template_ms_median']:9.1f} "
              f"{r['search_ms_median']:9.1f} {r['refine_ms_median']:11.1f} "
              f"{r['total_ms_median']:9.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
