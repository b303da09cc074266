"""Run the device agent (deploy/edgeprune_agent.py) on a target and parse its JSON lines."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from importlib import resources

from edgeprune.runtimes.settings import AgentSettings
from edgeprune.targets.base import RemoteCommandError, TargetError

AGENT_FILE = "edgeprune_agent.py"


class AgentError(TargetError):
    """The device agent reported an error or printed something unreadable."""


def agent_script() -> str:
    """Local path of the standalone agent script shipped with edgeprune."""
    return str(resources.files("edgeprune.deploy_agent").joinpath(AGENT_FILE))


def agent_argv(
    workdir: str, model_names: Sequence[str], settings: AgentSettings, python: str = "python3"
) -> list[str]:
    """The agent command line (an argument list, quoted later by the target)."""
    argv = [
        python,
        posixpath.join(workdir, AGENT_FILE),
        "--threads",
        str(settings.threads),
        "--batch",
        str(settings.batch),
        "--min-time",
        repr(float(settings.min_time_s)),
        "--min-runs",
        str(settings.min_runs),
        "--warmup",
        str(settings.warmup),
        "--provider",
        settings.provider,
        "--opt-level",
        settings.opt_level,
    ]
    if settings.interleave and len(model_names) > 1:
        argv.append("--interleave")
        if settings.halfwidth > 0:
            argv += ["--halfwidth", repr(float(settings.halfwidth))]
            argv += ["--max-time", repr(float(settings.max_time_s))]
    if settings.profile_nodes:
        argv.append("--profile-nodes")
    if settings.save_optimized:
        argv.append("--save-optimized")
    return argv + [posixpath.join(workdir, n) for n in model_names]


def parse_agent_output(stdout: str, expected: int | None = None) -> list[dict]:
    """Result dicts from the agent's stdout: one JSON object per line; other lines are ignored.

    Raises AgentError on an ``{"error": ...}`` line or when the count is not ``expected``.
    """
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict):
            continue
        if "error" in row:
            raise AgentError(f"the device agent failed: {row['error']}")
        if "latency_ms_median" in row:
            rows.append(row)
    if expected is not None and len(rows) != expected:
        raise AgentError(f"the device agent returned {len(rows)} results for {expected} models")
    return rows


def run_in_session(session, settings: AgentSettings) -> list[dict]:
    """Run the agent once in an open DeviceSession and parse its output."""
    argv = agent_argv(session.workdir, session.model_names, settings, session.python)
    res = session.target.run(argv, timeout=settings.timeout_s(len(session.model_names)))
    if not res.ok:
        try:  # the agent prints {"error": ...} for the failures it knows about
            parse_agent_output(res.stdout)
        except AgentError as exc:
            raise AgentError(f"{exc} (on {session.target.name})") from None
        tail = " | ".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-2:])
        raise RemoteCommandError(
            f"the device agent failed on {session.target.name} with exit status {res.rc}: "
            f"{tail or 'no output'}",
            res,
        )
    return parse_agent_output(res.stdout, expected=len(session.model_names))
