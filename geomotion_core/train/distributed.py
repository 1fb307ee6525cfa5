# SPDX-License-Identifier: Apache-2.0
"""Multi-process training with ``torchrun`` (PyTorch DDP): rank, device, wrapping, sampling.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and the rendezvous address); a plain
``python``/``geomotion train`` run is a world of one and needs no process group. The process group
uses NCCL on CUDA and gloo on the CPU. The training step must call the DDP *wrapper*
(``wrapped(images, flow)``): its backward hooks all-reduce (average) the gradients. Calling
``wrapped.module(...)``, as the official script does, skips them and every rank trains alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

# Other ranks wait at a barrier while rank 0 validates and writes a (full-size: ~4 GB) checkpoint.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> "DistributedContext":
        """Read the variables ``torchrun`` sets; a world of one without them."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
        )

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes checkpoints."""
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """Under ``torchrun`` each process uses the GPU of its local rank."""
        if self.distributed and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo otherwise); a no-op for a world of one."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            init_method="env://",  # MASTER_ADDR / MASTER_PORT
            rank=self.rank,
            world_size=self.world_size,
            timeout=PROCESS_GROUP_TIMEOUT,
        )

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module the training step calls: DDP around ``model`` when distributed."""
        if not self.distributed:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def sampler(self, dataset: Dataset, seed: int) -> DistributedSampler:
        """This rank's share of each epoch, shuffled by ``seed + epoch`` (``set_epoch``)."""
        return DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed, drop_last=True
        )

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over all ranks (identity for a world of one)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size
