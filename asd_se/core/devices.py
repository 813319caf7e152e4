"""Which torch device a process computes on: one rule for train, evaluate, render and explain-eval."""

from __future__ import annotations

import torch

from asd_se.core.errors import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks this process's GPU (``local_rank``) when CUDA is available, else the CPU; any other name
    (``cpu``, ``cuda``, ``cuda:1``) is taken as given."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"process of local rank {local_rank} has no GPU of its own: {torch.cuda.device_count()} "
                               f"visible; run torchrun with --nproc_per_node <= {torch.cuda.device_count()}")
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)
