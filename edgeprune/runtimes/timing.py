"""``time_models``: the one way to time ONNX models on a device with any registered runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgeprune.runtimes.interval import RatioInterval, ratio_interval
from edgeprune.runtimes.registry import Runtime, get_runtime, require_capability
from edgeprune.runtimes.session import DeviceSession
from edgeprune.runtimes.settings import AgentSettings


def needed_capabilities(settings: AgentSettings, n_models: int) -> list[str]:
    """The runtime capabilities that timing ``n_models`` models with ``settings`` asks for."""
    need = []
    if settings.interleave and n_models > 1:
        need.append("times_interleaved")
    if settings.profile_nodes:
        need.append("profiles_layers")
    if settings.save_optimized:
        need.append("saves_optimized")
    return need


def check_capabilities(
    runtime: Runtime | str, settings: AgentSettings, n_models: int, also: Sequence[str] = ()
) -> Runtime:
    """The runtime (looked up by name if need be), after one UserError if it lacks a capability
    that ``settings`` (or ``also``) asks for."""
    rt = get_runtime(runtime) if isinstance(runtime, str) else runtime
    for capability in [*also, *needed_capabilities(settings, n_models)]:
        require_capability(rt, capability)
    return rt


def time_models(
    target,
    model_paths: Sequence[str],
    runtime: Runtime | str,
    settings: AgentSettings,
    python: str = "python3",
    *,
    extra_files: Sequence[str] = (),
    fetch: Mapping[str, str] | None = None,
) -> list[dict]:
    """Time ``model_paths`` on ``target`` with ``runtime``; one result dict per model, in order.

    Timed interleaved, every row after the first carries ``ratio_interval`` (its ratio to
    the first model: median of per-round ratios, 95% interval, rounds, spread, why timing
    stopped; see ``pair_interval``) and every row its per-round ``times_ms``.

    Capabilities are checked before anything is uploaded. The runtime's files, the models
    and ``extra_files`` (e.g. ``X.check.npz``) go to a fresh remote dir that is removed at
    the end. ``fetch`` maps a key of the first result naming a file the runtime wrote (e.g.
    ``optimized_model``) to the local path it is downloaded to. ``target`` stays open.
    """
    rt = check_capabilities(runtime, settings, len(model_paths))
    with DeviceSession(target, rt, model_paths, python, extra_files) as session:
        rows = session.run(settings)
        for row in rows[1:]:
            iv = pair_interval(row, rows[0], settings.halfwidth or None)
            if iv is not None:
                row["ratio_interval"] = iv.to_dict()
        for key, local in (fetch or {}).items():
            if rows and rows[0].get(key):
                session.fetch(rows[0][key], local)
    return rows


_AGENT_STOPS = {"narrow": "narrow", "time_cap": "time_cap", "max_runs": "time_cap"}


def pair_interval(
    num: Mapping, den: Mapping, target_halfwidth: float | None = None
) -> RatioInterval | None:
    """The interval of ``num``/``den`` from two rows timed interleaved (their per-round
    ``times_ms``), or None when the rows carry no round times (not interleaved)."""
    a, b = den.get("times_ms"), num.get("times_ms")
    if not a or not b or len(a) != len(b):
        return None
    stop = _AGENT_STOPS.get(str(num.get("stop")), "fixed") if target_halfwidth else None
    return ratio_interval(a, b, target_halfwidth=target_halfwidth, stop=stop)
