"""Runtimes: ONE registry, dispatch by name. Each runtime declares its device-side
requirements and capabilities (``edgeprune.runtimes.registry``), uploads its files next to
the models (``support_files``) and benchmarks them on a target (``run(session, settings)``).

``time_models`` (any runtime, any target) is the one entry point for timing ONNX files.
"""

from __future__ import annotations

from edgeprune.runtimes.agent import AgentError
from edgeprune.runtimes.ort import OrtCudaRuntime, OrtRuntime
from edgeprune.runtimes.registry import (
    Capabilities,
    Runtime,
    get_runtime,
    list_runtimes,
    register_runtime,
    require_capability,
    runtime_names,
)
from edgeprune.runtimes.session import DeviceSession
from edgeprune.runtimes.settings import AgentSettings
from edgeprune.runtimes.tensorrt import TensorRTRuntime, TensorRTUnavailable
from edgeprune.runtimes.timing import check_capabilities, time_models

for _factory in (OrtRuntime, OrtCudaRuntime, TensorRTRuntime):
    register_runtime(_factory)

__all__ = [
    "AgentError",
    "AgentSettings",
    "Capabilities",
    "DeviceSession",
    "OrtCudaRuntime",
    "OrtRuntime",
    "Runtime",
    "TensorRTRuntime",
    "TensorRTUnavailable",
    "check_capabilities",
    "get_runtime",
    "list_runtimes",
    "register_runtime",
    "require_capability",
    "runtime_names",
    "time_models",
]
