"""Which torch device a process computes on: one rule for train, evaluate, render and explain-eval."""

from __future__ import annotations

import torch

from asd_se.core.errors import ConfigError


def check_device_name(setting: str, name: str) -> None:
    """ConfigError naming ``setting`` unless ``name`` is ``auto`` or a device torch knows (cpu, cuda, cuda:N)."""
    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{setting} must be auto, cpu, cuda or cuda:N, not {name!r}") from None


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks this process's GPU (``local_rank``) when CUDA is available, else the CPU; any other name
    (``cpu``, ``cuda``, ``cuda:1``) is taken as given, once it is known to exist here: a CUDA device asked for
    on a machine without one (or past the GPUs it has) is a ConfigError, before any work."""
    check_device_name("device", name)
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"process of local rank {local_rank} has no GPU of its own: {torch.cuda.device_count()} "
                               f"visible; run torchrun with --nproc_per_node <= {torch.cuda.device_count()}")
        return torch.device(f"cuda:{local_rank}")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: this machine has no CUDA GPU torch can use (torch "
                              f"{torch.__version__}); use --device cpu or auto")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} GPU(s) visible")
    elif device.type not in ("cpu", "mps", "xpu"):
        raise ConfigError(f"device {name!r}: asd-se runs on cpu or cuda")
    return device
