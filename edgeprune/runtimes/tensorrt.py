"""TensorRT on the device: engine built with the Python API when importable, else trtexec.

Timing always goes through ``trtexec`` on the device; its output is parsed here
(``edgeprune.runtimes.trtexec``). TensorRT is never needed on the host.
"""

from __future__ import annotations

import json
import os
from importlib import resources

from edgeprune.errors import UserError
from edgeprune.runtimes.registry import Capabilities
from edgeprune.runtimes.settings import AgentSettings
from edgeprune.targets.base import RemoteCommandError

BUILD_SCRIPT = "trt_build.py"
TRTEXEC_CANDIDATES = ("trtexec", "/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")


class TensorRTUnavailable(UserError):
    """TensorRT (Python API and trtexec) is missing on the device."""


def onnx_input(path: str) -> tuple[str, list]:
    """Name and shape (ints or names for dynamic dims) of an ONNX model's first input."""
    from edgeprune.errors import require

    onnx = require("onnx", "onnx")
    model = onnx.load(path, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in inits)
    dims = [
        d.dim_value if d.HasField("dim_value") else d.dim_param
        for d in inp.type.tensor_type.shape.dim
    ]
    return inp.name, dims


def shape_spec(path: str, batch: int) -> str:
    """trtexec ``--shapes`` value for a batch size, e.g. ``input:8x3x32x32``."""
    name, dims = onnx_input(path)
    dims = [batch] + [int(d) if isinstance(d, int) and d > 0 else 1 for d in dims[1:]]
    return f"{name}:{'x'.join(str(d) for d in dims)}"


class TensorRTRuntime:
    """TensorRT engines built and timed on the device."""

    name = "tensorrt"
    description = "NVIDIA TensorRT (Jetson / GPU server), timed with trtexec"
    # what `edgeprune device setup` installs with the device's pip; TensorRT itself comes
    # with JetPack or NVIDIA's packages, so the venv also sees the system's site-packages
    device_requirements = ("numpy",)
    system_site_packages = True
    # trtexec times one engine at a time and has no output check or per-op sweep here
    capabilities = Capabilities()
    provider: str | None = None  # not ONNX Runtime

    def resolve_provider(self, requested: str | None) -> str:
        """TensorRT runs no ONNX Runtime provider; the profile's is kept for the record."""
        return requested or "CPUExecutionProvider"

    def support_files(self) -> list[str]:
        """The engine-build script uploaded next to the models."""
        return [str(resources.files("edgeprune.deploy_agent").joinpath(BUILD_SCRIPT))]

    def detect(self, session) -> dict:
        """Which TensorRT tools the device has: {'python': version|None, 'trtexec': path|None}."""
        found = getattr(session, "_trt_tools", None)
        if found is not None:
            return found
        t = session.target
        res = t.run(
            [session.python, "-c", "import tensorrt; print(tensorrt.__version__)"], timeout=120
        )
        py = res.stdout.strip().splitlines()[-1] if res.ok and res.stdout.strip() else None
        script = 'for c in "$@"; do command -v "$c" 2>/dev/null && exit 0; done; exit 1'
        res = t.run(["sh", "-c", script, "sh", *TRTEXEC_CANDIDATES], timeout=60)
        exe = res.stdout.strip().splitlines()[0] if res.ok and res.stdout.strip() else None
        if exe is None:
            how = (
                "the tensorrt Python package is there but trtexec is not"
                if py
                else "neither the tensorrt Python package nor trtexec was found"
            )
            raise TensorRTUnavailable(
                f"TensorRT is not available on {t.name}: {how} (install TensorRT or JetPack, "
                "see deploy/README.md, or use --runtime ort)"
            )
        session._trt_tools = {"python": py, "trtexec": exe}
        return session._trt_tools

    def run(self, session, settings: AgentSettings) -> list[dict]:
        """Build one engine per model for ``settings.batch`` and time it with trtexec."""
        from edgeprune.quant.ptq import is_int8
        from edgeprune.runtimes.trtexec import parse_trtexec, trtexec_argv, trtexec_result

        tools = self.detect(session)
        rows = []
        for local, name in zip(session.model_paths, session.model_names, strict=True):
            shapes = shape_spec(local, settings.batch)
            engine = session.remote(
                f"{os.path.splitext(name)[0]}.b{settings.batch}.{settings.precision}.engine"
            )
            fp16 = settings.precision == "fp16"
            # int8 only for a model with Q/DQ nodes (explicit quantization); a dense fp32 twin
            # built with --int8 would get TensorRT's placeholder scales
            int8 = settings.precision == "int8" and is_int8(local)
            flags = (["--fp16"] if fp16 else []) + (["--int8"] if int8 else [])
            built_with = "trtexec"
            if tools["python"]:
                argv = [
                    session.python,
                    session.remote(BUILD_SCRIPT),
                    "--onnx",
                    session.remote(name),
                    "--engine",
                    engine,
                    "--shape",
                    shapes,
                ] + flags
                res = session.target.run(argv, timeout=1800)
                if not res.ok:
                    raise RemoteCommandError(
                        f"TensorRT engine build failed on {session.target.name}: {_last_error(res)}",
                        res,
                    )
                built_with = "python"
            argv = trtexec_argv(
                tools["trtexec"],
                onnx=session.remote(name),
                engine=engine,
                shapes=shapes,
                fp16=fp16,
                int8=int8,
                build=not tools["python"],
                duration_s=max(1.0, settings.min_time_s),
                iterations=settings.min_runs,
            )
            res = session.target.run(argv, timeout=1800 + settings.timeout_s(1))
            if not res.ok:
                raise RemoteCommandError(
                    f"trtexec failed on {session.target.name} with exit status {res.rc}: "
                    f"{_last_error(res)}",
                    res,
                )
            try:
                parsed = parse_trtexec(res.stdout + "\n" + res.stderr)
            except ValueError as exc:
                raise RemoteCommandError(
                    f"cannot read trtexec output from {session.target.name}: {exc}", res
                ) from None
            row = trtexec_result(parsed, settings.batch)
            row.update(
                model=name,
                precision=settings.precision,
                engine_built_with=built_with,
                interleaved=False,
                threads=None,
                trtexec_warnings=parsed["warnings"],
            )
            rows.append(row)
        return rows


def _last_error(res) -> str:
    for line in reversed(res.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return str(json.loads(line).get("error", line))
            except json.JSONDecodeError:
                break
    lines = [
        ln for ln in (res.stderr + "\n" + res.stdout).splitlines() if "[E]" in ln or "rror" in ln
    ]
    return (
        lines[-1]
        if lines
        else (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
    ).strip()
