"""ONNX Runtime (CPU and CUDA): timed by the device agent; per-node profiles mapped to modules."""

from __future__ import annotations

from collections.abc import Iterable

from edgeprune.runtimes.agent import agent_script, run_in_session
from edgeprune.runtimes.registry import Capabilities
from edgeprune.runtimes.settings import AgentSettings

_ORT_CAPABILITIES = Capabilities(
    profiles_per_op=True,
    times_interleaved=True,
    checks_outputs=True,
    profiles_layers=True,
    saves_optimized=True,
)


class OrtRuntime:
    """ONNX Runtime on the CPU (or the execution provider a device profile names)."""

    name = "ort"
    description = "ONNX Runtime, CPU execution provider (or the profile's provider)"
    device_requirements: tuple[str, ...] = ("numpy", "onnxruntime")  # `device setup` installs
    system_site_packages = False
    capabilities = _ORT_CAPABILITIES
    provider: str | None = "CPUExecutionProvider"

    def resolve_provider(self, requested: str | None) -> str:
        """The execution provider to run with: the one asked for, else the CPU's."""
        return requested or str(self.provider)

    def support_files(self) -> list[str]:
        """Files uploaded next to the models."""
        return [agent_script()]

    def run(self, session, settings: AgentSettings) -> list[dict]:
        """Time every model of ``session`` (interleaved when asked) with the device agent."""
        return run_in_session(session, settings)

    def run_in_process(self, model_paths: list[str], settings: AgentSettings) -> list[dict]:
        """Time models in this process with the agent's own routine (local sweeps)."""
        from edgeprune.deploy_agent.edgeprune_agent import run_models

        return run_models(
            model_paths,
            threads=settings.threads,
            batch=settings.batch,
            warmup=settings.warmup,
            min_time_s=settings.min_time_s,
            min_runs=settings.min_runs,
            interleave=settings.interleave,
            provider=settings.provider,
            opt_level=settings.opt_level,
            halfwidth=settings.halfwidth,
            max_time_s=settings.max_time_s,
        )


class OrtCudaRuntime(OrtRuntime):
    """ONNX Runtime with the CUDA execution provider (onnxruntime-gpu on the device)."""

    name = "ort-cuda"
    description = "ONNX Runtime, CUDA execution provider (NVIDIA GPU, onnxruntime-gpu)"
    device_requirements = ("numpy", "onnxruntime-gpu")
    provider = "CUDAExecutionProvider"

    def resolve_provider(self, requested: str | None) -> str:
        """Always CUDA: a profile's default CPU provider does not turn it into ``ort``."""
        from edgeprune.errors import UserError

        if requested in (None, "", "CPUExecutionProvider", self.provider):
            return str(self.provider)
        raise UserError(
            f"runtime 'ort-cuda' runs on CUDAExecutionProvider, not {requested} "
            "(use runtime 'ort' with that provider)"
        )


def layer_breakdown(nodes: Iterable[dict], module_names: set[str] | None = None) -> list[dict]:
    """Sum per-node times (agent ``nodes`` entries) per module path, slowest first.

    Node names come from the legacy exporter (``/layer1/layer1.0/conv1/Conv``); fused
    nodes keep the name of the node they absorbed into. Unnamed nodes go to '(graph)'.
    """
    from edgeprune.export.onnx_export import node_module

    total: dict[str, dict] = {}
    for n in nodes:
        module = node_module(n.get("node", ""), module_names) or "(graph)"
        row = total.setdefault(module, {"module": module, "ms": 0.0, "ops": []})
        row["ms"] += float(n.get("ms", 0.0))
        if n.get("op") and n["op"] not in row["ops"]:
            row["ops"].append(n["op"])
    rows = sorted(total.values(), key=lambda r: -r["ms"])
    for r in rows:
        r["ops"] = "+".join(r["ops"])
    return rows
