"""Benchmark settings handed to a runtime on a device."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

PRECISIONS = ("fp32", "fp16", "int8")  # int8: a QDQ model (explicit quantization)
OPT_LEVELS = ("disable", "basic", "extended", "all")
# onnxruntime.get_all_providers() of ONNX Runtime 1.31 (every provider some build can have)
PROVIDERS = (
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
    "MIGraphXExecutionProvider",
    "OpenVINOExecutionProvider",
    "DnnlExecutionProvider",
    "VitisAIExecutionProvider",
    "QNNExecutionProvider",
    "NnapiExecutionProvider",
    "VSINPUExecutionProvider",
    "JsExecutionProvider",
    "CoreMLExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "DmlExecutionProvider",
    "RknpuExecutionProvider",
    "WebNNExecutionProvider",
    "WebGpuExecutionProvider",
    "XnnpackExecutionProvider",
    "CANNExecutionProvider",
    "AzureExecutionProvider",
)


def check_provider(name: str) -> str:
    """``name`` if ONNX Runtime knows the execution provider, else one UserError sentence.

    Checked against every provider ONNX Runtime defines (the device may have one this host
    lacks), so a typo is refused instead of silently running on the CPU.
    """
    from edgeprune.errors import UserError

    if name in PROVIDERS or name in _host_providers():
        return name
    hint = [p for p in PROVIDERS if p.lower().startswith(str(name).lower()[:3])]
    maybe = f"; did you mean {hint[0]}?" if hint else ""
    raise UserError(
        f"unknown ONNX Runtime execution provider {name!r} (e.g. CPUExecutionProvider, "
        f"CUDAExecutionProvider, TensorrtExecutionProvider){maybe}"
    )


def _host_providers() -> list[str]:
    """Every provider this host's onnxruntime defines (newer than PROVIDERS), or []."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_all_providers())


@dataclass(frozen=True)
class AgentSettings:
    """How to time models on a device (one batch size)."""

    threads: int = 1
    batch: int = 1
    min_time_s: float = 1.0
    min_runs: int = 20
    warmup: int = 10
    interleave: bool = False
    provider: str = "CPUExecutionProvider"
    opt_level: str = "all"
    precision: str = "fp32"
    profile_nodes: bool = False
    save_optimized: bool = False
    # interleaved pairs: time past min_time_s until the ratio's 95% interval is within
    # +-halfwidth, or max_time_s has passed (0: min_time_s only)
    halfwidth: float = 0.0
    max_time_s: float = 0.0

    def __post_init__(self) -> None:
        from edgeprune.errors import UserError

        if self.threads < 1 or self.batch < 1 or self.min_runs < 1 or self.warmup < 0:
            raise UserError("threads, batch and min-runs must be >= 1 and warmup >= 0")
        if self.min_time_s < 0:
            raise UserError("--min-time must not be negative")
        if self.halfwidth < 0 or self.max_time_s < 0:
            raise UserError("the interval half-width and the time cap must not be negative")
        if self.opt_level not in OPT_LEVELS:
            raise UserError(f"opt level {self.opt_level!r} is not one of {', '.join(OPT_LEVELS)}")
        check_provider(self.provider)
        if self.precision not in PRECISIONS:
            raise UserError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AgentSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def timeout_s(self, n_models: int) -> float:
        """A generous wall-clock limit for one benchmark call on a slow device."""
        timed = max(self.min_time_s, self.max_time_s)
        return 300.0 + n_models * (20.0 * timed + 2.0 * self.min_runs + self.warmup)
