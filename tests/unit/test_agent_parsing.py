"""Device agent: JSON-line parsing, command line, per-node profile aggregation."""

from __future__ import annotations

import json
import sys

import pytest
from edgeprune.deploy_agent import edgeprune_agent as agent

from edgeprune.runtimes.agent import AgentError, agent_argv, agent_script, parse_agent_output
from edgeprune.runtimes.settings import AgentSettings
from edgeprune.targets.base import quote_argv

ROW = {"model": "a.onnx", "latency_ms_median": 1.5, "throughput_ips": 666.0, "n_runs": 20}


def test_parse_skips_noise_lines():
    out = "\n".join(
        [
            "2026-01-01 [W:onnxruntime] some warning {not json",
            json.dumps(ROW),
            "",
            json.dumps({**ROW, "model": "b.onnx"}),
        ]
    )
    rows = parse_agent_output(out, expected=2)
    assert [r["model"] for r in rows] == ["a.onnx", "b.onnx"]


def test_parse_error_line_and_count():
    with pytest.raises(AgentError, match="model file not found"):
        parse_agent_output(json.dumps({"error": "model file not found: x.onnx"}))
    with pytest.raises(AgentError, match="1 results for 2 models"):
        parse_agent_output(json.dumps(ROW), expected=2)


def test_agent_argv_is_quoted_per_argument():
    st = AgentSettings(threads=4, batch=8, min_time_s=0.5, interleave=True, profile_nodes=True)
    argv = agent_argv("/tmp/dir with space", ["m a.onnx", "d.onnx"], st, python="/opt/py 3/python")
    assert argv[:2] == ["/opt/py 3/python", "/tmp/dir with space/edgeprune_agent.py"]
    assert "--interleave" in argv and "--profile-nodes" in argv
    assert argv[argv.index("--batch") + 1] == "8"
    line = quote_argv(argv)
    assert "'/opt/py 3/python'" in line and "'/tmp/dir with space/m a.onnx'" in line
    single = agent_argv("/w", ["m.onnx"], st)
    assert "--interleave" not in single  # one model: nothing to interleave


def test_agent_cli_accepts_what_runtimes_send(tmp_path):
    parser = agent.get_args_parser()
    st = AgentSettings(save_optimized=True, profile_nodes=True, interleave=True)
    args = parser.parse_args(agent_argv(str(tmp_path), ["a.onnx", "b.onnx"], st)[2:])
    assert args.interleave and args.profile_nodes and args.save_optimized
    assert args.models == [f"{tmp_path}/a.onnx", f"{tmp_path}/b.onnx"]


def test_node_events_median_per_node():
    events = [{"cat": "Session", "name": "model_run", "dur": 999}]
    for dur in (900, 100, 110):
        events.append(
            {
                "cat": "Node",
                "name": "/conv1/Conv_kernel_time",
                "dur": dur,
                "args": {"op_name": "Conv"},
            }
        )
        events.append({"cat": "Node", "name": "/relu/Relu_fence_before", "dur": 1})
    nodes = agent.parse_node_events(events, runs=3)
    assert nodes == [{"node": "/conv1/Conv", "op": "Conv", "ms": pytest.approx(0.11)}]


def test_agent_script_is_shipped_and_standalone():
    src = open(agent_script()).read()
    assert "import edgeprune" not in src
    assert agent.device_identity()["cores"] >= 1


def test_agent_reports_missing_model_as_json(tmp_path, capsys):
    rc = agent.main(agent.get_args_parser().parse_args([str(tmp_path / "nope.onnx")]))
    assert rc == 2
    assert "model file not found" in json.loads(capsys.readouterr().out)["error"]
    assert sys.version_info >= (3, 7)
