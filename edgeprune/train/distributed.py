"""Process-group set-up under torchrun (gloo on CPU, nccl on GPU) and small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from edgeprune.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this process's local GPU) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for but CUDA is not available here")
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", local_rank)
    return dev


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group torchrun describes in the environment (no-op when run alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world <= 1:
        return DistEnv(device=dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev)


def current_env(device: torch.device | None = None) -> DistEnv:
    """The DistEnv of an already initialized (or absent) process group."""
    dev = device or torch.device("cpu")
    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), dev.index or 0, dev)
    return DistEnv(device=dev)


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``t`` over ranks (a copy; identity when not distributed)."""
    if not env.distributed:
        return t
    backend_dev = env.device if dist.get_backend() == "nccl" else torch.device("cpu")
    buf = t.to(backend_dev).clone()
    dist.all_reduce(buf)
    return buf.to(t.device)


def broadcast_buffers_(module: torch.nn.Module, env: DistEnv) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank, in place."""
    if env.distributed:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if env.distributed:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
