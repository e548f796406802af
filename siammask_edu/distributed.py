"""The training loop of :mod:`siammask_edu.training` on several processes with DDP.

Launch with torchrun (one process per GPU, or several CPU processes)::

    torchrun --nproc_per_node=2 -m siammask_edu.distributed configs/train_lite.json [--resume]

What changes against one process (``training.train(..., rank, world_size)``):

* backend ``nccl`` when CUDA is available (one device per local rank), else ``gloo``;
* the global batch ``B`` is split: rank ``r`` reads items ``[t*B + r*B/W, t*B + (r+1)*B/W)``
  of step ``t`` (:class:`~siammask_edu.datasets.PairSampler`, the distributed sampler of
  this project: the dataset itself is deterministic per index, so no shuffling is needed);
* each rank computes the released losses on its micro-batch (normalised within it, as the
  released ``DataParallel`` code did per GPU); DDP averages the gradients, so a step equals
  a single process with ``grad_accum = W`` on the same global batch;
* loss values are all-reduced before the skip decision, so every rank skips together;
* only rank 0 logs and writes checkpoints; all ranks read them on resume.

BatchNorm statistics are per rank (DDP broadcasts rank 0's buffers at each forward).

See book/09_training_lite.py.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .training import TrainConfig, load_run_config, train, train_main


def backend() -> str:
    """``"nccl"`` with CUDA, else ``"gloo"`` (CPU).

    See book/09_training_lite.py.
    """
    return "nccl" if torch.cuda.is_available() else "gloo"


def local_device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` with CUDA, else ``cpu``.

    See book/09_training_lite.py.
    """
    if torch.cuda.is_available():
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
        return dev
    return torch.device("cpu")


def main(argv=None) -> int:
    """torchrun entry point: ``CONFIG [--resume [RUN_DIR]] [--data ROOT]``; returns the exit
    status of ``siammask-edu train`` (:func:`~siammask_edu.training.train_main`): 0 finished,
    1 stopped on a bad loss, 2 bad config or data.

    Prints what the CLI prints: ``error: ...`` (one line, from rank 0) and, on rank 0,
    ``finished: <final.pth>``. A bad run file is reported before the process group is
    formed. (torchrun then adds its own failure report with the exit status of the ranks.)

    Memory per rank: the model, its gradients and optimiser state, and the frames of the
    batches in flight; training data are decoded on demand (not kept, see
    :func:`~siammask_edu.training.build_dataset`), so W ranks do not hold W copies of it.

    See book/09_training_lite.py.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="torchrun ... -m siammask_edu.distributed")
    ap.add_argument("config", help="run file, e.g. configs/train_lite.json")
    ap.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                    help="continue the run from its last checkpoint")
    ap.add_argument("--data", default=None, help="dataset root (default: data_root())")
    args = ap.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    try:
        run = load_run_config(args.config)
    except (FileNotFoundError, ValueError) as exc:
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    dist.init_process_group(backend())
    try:
        return train_main(args.config, resume=args.resume, data=args.data, rank=dist.get_rank(),
                          world_size=dist.get_world_size(), device=local_device(), run=run)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """An unused TCP port on localhost (for a local process group).

    See book/09_training_lite.py.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg_dict: dict, run_dir: str, kwargs: dict):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train(TrainConfig.from_dict(cfg_dict), Path(run_dir), rank=rank, world_size=world,
              progress=False, **kwargs)
    finally:
        dist.destroy_process_group()


def spawn_cpu(cfg: TrainConfig, run_dir, world_size: int = 2, **kwargs) -> Path:
    """Run :func:`~siammask_edu.training.train` on ``world_size`` local CPU processes (gloo)
    with ``torch.multiprocessing`` — torchrun's job, for tests and notebooks.

    Returns:
        ``run_dir`` (rank 0 wrote ``final.pth``/``last.pth`` there).

    See book/09_training_lite.py.
    """
    mp.spawn(_worker, args=(world_size, free_port(), cfg.to_dict(), str(run_dir), kwargs),
             nprocs=world_size, join=True)
    return Path(run_dir)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["backend", "local_device", "main", "spawn_cpu", "free_port"]
