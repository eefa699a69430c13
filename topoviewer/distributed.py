"""Data-parallel training over processes (``torchrun`` or ``topoviewer train --nproc N``).

Every process builds the same model (same seed), takes its contiguous share of each step's global
batch (:class:`topoviewer.data.StepBatches`; the diet slices its in-memory batch the same way) and
runs it through ``DistributedDataParallel``, which averages the gradients; gloo on CPU, NCCL on
CUDA (one GPU per process, ``cuda:LOCAL_RANK``). Only process 0 writes checkpoints (atomically,
under the output lock) and evaluates the validation split.

**Decision: the spatial loss and batch norm see the global batch.** Response correlations need
many images, so the responses of the units a step's loss uses (every process draws the same ones:
``SpatialLoss.select`` with the same seeded generator) are all-gathered (:func:`gather`, gradients
flowing back to each process's own images) and every process computes the loss of the whole batch;
batch-norm layers use the statistics of the whole batch (:func:`global_batch_norm`). A run on N
processes with global batch B therefore computes what one process with batch B computes
(tests/test_data.py checks it after 20 steps), and a checkpoint continues on any number of processes.
The price is communication: ``B × min(units, 500)`` floats per sheet and step for the relative loss
(``B × min(units, 4096)`` for the absolute one) — ``spatial_batch="local"`` makes the spatial loss
use each process's own images instead (as independent replicas would).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["World", "join", "gather", "global_batch_norm", "any_process", "launch"]


@dataclass
class World:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    owned: bool = False  # this run initialised the process group (and ends it)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def leave(self) -> None:
        if self.owned:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owned = False


def join(device: str) -> World:
    """The :class:`World` of a process started by torchrun (``WORLD_SIZE`` > 1 in the environment),
    initialising the process group (NCCL for a CUDA device, else gloo) unless the caller did."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import warnings

    import torch.distributed as dist

    # the autograd-aware collectives used here (torch.distributed.nn) announce a future move; they still work
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.distributed.nn")
    warnings.filterwarnings("ignore", message=".*torch.distributed.nn.functional", category=FutureWarning)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned)


def gather(x):
    """(B_r, …) on every process → (Σ B_r, …) in rank order; the gradient of each part flows back to
    the process it came from (summed over the processes, which all compute the same loss)."""
    import torch
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()))


class _GlobalBatchNorm:
    """Batch norm over the global batch while training in a process group (a mixin before a torch
    ``_BatchNorm`` class; state dict, evaluation and single-process training are unchanged)."""

    def forward(self, x):
        import torch
        import torch.distributed as dist
        from torch.distributed.nn.functional import all_reduce

        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # statistics in float32 under bf16 autocast (as torch's batch norm)
        dims = [0] + list(range(2, x.ndim))
        shape = [1, -1] + [1] * (x.ndim - 2)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), count]))
        n = total[-1]
        d = x - (total[:-1] / n).view(shape)
        var = all_reduce((d * d).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * (total[:-1] / n).detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(float(n) - 1, 1.0))
        y = d / torch.sqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


_CLASSES: dict = {}


def global_batch_norm(module) -> None:
    """Make every batch-norm layer of ``module`` normalise over the global batch (in place)."""
    from torch import nn

    for m in module.modules():
        cls = type(m)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, _GlobalBatchNorm):
            if cls not in _CLASSES:
                _CLASSES[cls] = type(f"Global{cls.__name__}", (_GlobalBatchNorm, cls), {})
            m.__class__ = _CLASSES[cls]


def any_process(flag: bool, world: World, device) -> bool:
    """True when ``flag`` is true on any process (e.g. a stop request seen by one of them)."""
    if world.size == 1:
        return bool(flag)
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def launch(nproc: int, argv: list) -> int:
    """Run ``topoviewer <argv>`` in ``nproc`` processes on this machine through torchrun; its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "topoviewer", *argv]
    return subprocess.call(cmd)
