"""ONNX Runtime: timed on the device by the agent; per-node profiles mapped back to modules."""

from __future__ import annotations

from collections.abc import Iterable

from edgeprune.runtimes.agent import agent_script, run_in_session
from edgeprune.runtimes.settings import AgentSettings


class OrtRuntime:
    """ONNX Runtime with the device profile's opt level, threads and execution provider."""

    name = "ort"
    description = "ONNX Runtime (CPU or any installed execution provider)"
    device_requirements = ("numpy", "onnxruntime")  # what `edgeprune device setup` installs
    system_site_packages = False

    def support_files(self) -> list[str]:
        """Files uploaded next to the models."""
        return [agent_script()]

    def run(self, session, settings: AgentSettings) -> list[dict]:
        """Time every model of ``session`` (interleaved when asked) with the device agent."""
        return run_in_session(session, settings)


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
