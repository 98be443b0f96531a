"""Where a fit runs: the Trainer's accelerator, devices, nodes and strategy from ``training:``.

One process by default. ``devices`` x ``num_nodes`` > 1 (or ``strategy: ddp``) trains with
Lightning's DDP: on one machine Lightning starts the other processes itself (it reruns the
command line, so the run must come from ``polymodal fit`` or a script); across machines
``torchrun`` or SLURM starts one per device and Lightning finds them from the environment.
Processes talk over gloo on CPUs and NCCL on GPUs (Lightning's choice). Nothing here is a
distributed layer of its own: it is the few keyword arguments ``L.Trainer`` takes.
"""
from __future__ import annotations

import sys
from typing import Any

import torch

from polymodal.distributed import world_size
from polymodal.errors import ConfigError
from polymodal.runtime import device_for

__all__ = ["check_devices", "trainer_devices", "PRECISION"]

PRECISION = {"bf16": "bf16-mixed", "16": "16-mixed", "32": "32-true"}  # polymodal -> Lightning


def _launched_externally() -> tuple[str, int] | None:
    """``(launcher, processes)`` when torchrun / SLURM started the processes (Lightning then
    starts none), else None."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        return "torchrun", TorchElasticEnvironment().world_size()
    if SLURMEnvironment.detect():
        return "SLURM", SLURMEnvironment().world_size()
    return None


def check_devices(training: Any, precision: str) -> None:
    """Refuse, before any data is decoded, device settings this machine cannot run.

    Args:
        training: the ``TrainingConfig``.
        precision: the resolved precision (``runtime.resolve_precision``).

    Raises:
        ConfigError: a GPU asked for where none is visible, fp16 on a CPU, or several
            processes from an interactive session (Lightning reruns the script per process).
    """
    cuda = device_for(training.accelerator) == "cuda"
    if training.accelerator == "gpu" and not cuda:
        raise ConfigError("training.accelerator: gpu, but torch sees no CUDA GPU here "
                          f"(torch {torch.__version__}); use accelerator: auto or cpu, or install a CUDA build of torch")
    if precision == "16" and not cuda:
        raise ConfigError("training.precision: 16 (fp16 mixed precision) needs a CUDA GPU; on a CPU use "
                          "precision: bf16 (fast where the CPU has AVX512-BF16/AMX) or 32")
    launched = _launched_externally()
    if launched is not None and launched[1] != world_size(training):
        raise ConfigError(
            f"{launched[0]} started {launched[1]} processes, but training.devices x num_nodes = "
            f"{training.devices} x {training.num_nodes} = {world_size(training)}: each process would train a model "
            "of its own. Pass --devices <processes per machine> --num-nodes <machines> to match the launcher.")
    if world_size(training) > 1 and launched is None and _interactive():
        raise ConfigError(
            f"training.devices x num_nodes = {world_size(training)} processes, but this is an interactive "
            "session: Lightning starts the other processes by rerunning the script. Put the fit in a script "
            "(or use `polymodal fit --devices N`), or start the processes with torchrun.")


def _interactive() -> bool:
    main = sys.modules.get("__main__")
    return hasattr(sys, "ps1") or not getattr(main, "__file__", None)


def trainer_devices(training: Any) -> dict[str, Any]:
    """``L.Trainer`` keyword arguments: accelerator, devices, num_nodes, strategy."""
    if training.strategy == "auto" and world_size(training) == 1:
        strategy: Any = "auto"
    else:
        from lightning.pytorch.strategies import DDPStrategy

        # Inputs a row lacks (and a task's unused branches) leave some weights without
        # gradients in a step; DDP must be told to look for them.
        strategy = DDPStrategy(find_unused_parameters=True)
    accelerator = "gpu" if device_for(training.accelerator) == "cuda" else "cpu"
    return {"accelerator": accelerator, "devices": training.devices, "num_nodes": training.num_nodes,
            "strategy": strategy}
