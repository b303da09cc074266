"""The one rule that judges int8 outputs against fp32 outputs of the same inputs.

An int8 model never matches fp32 to the export tolerance; it is judged on what matters:
the top-1 class agrees on at least ``min_top1_agreement`` of the inputs, and the relative
L2 error of the whole output ``||int8 - fp32|| / ||fp32||`` is at most ``max_rel_l2``.

Defaults measured on the pretrained ResNet-20 (ORT 1.31, 256 calibration images, minmax):
on 1,000 val images agreement 0.985 and relative error 0.039; on 64 standard-normal inputs
0.94 and 0.049. A broken int8 kernel (wrong scale, wrong layout) gives errors near 1 and
chance agreement, far outside these bounds.

The device agent (deploy/edgeprune_agent.py, standalone) carries a copy of ``judge``
(``int8_agreement``); tests/unit/test_quant_ptq.py checks both give the same verdicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_TOP1_AGREEMENT = 0.9
MAX_REL_L2 = 0.15


@dataclass(frozen=True)
class Agreement:
    """How int8 outputs compare with fp32 outputs, and whether that meets the rule."""

    top1_agreement: float
    rel_l2: float
    n: int
    ok: bool
    min_top1_agreement: float = MIN_TOP1_AGREEMENT
    max_rel_l2: float = MAX_REL_L2

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        """One line for logs and report notes."""
        verdict = "within" if self.ok else "OUTSIDE"
        return (
            f"int8 vs fp32 on {self.n} inputs: top-1 agreement {self.top1_agreement:.3f} "
            f"(>= {self.min_top1_agreement:g}), relative L2 error {self.rel_l2:.3g} "
            f"(<= {self.max_rel_l2:g}): {verdict} the int8 tolerance"
        )


def judge(
    reference: np.ndarray,
    output: np.ndarray,
    min_top1_agreement: float = MIN_TOP1_AGREEMENT,
    max_rel_l2: float = MAX_REL_L2,
) -> Agreement:
    """Judge ``output`` (int8 model) against ``reference`` (fp32) of the same N inputs.

    Outputs are read as (N, classes...); a shape mismatch or a non-finite value fails.
    """
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    n = int(ref.shape[0]) if ref.ndim else 1
    if out.shape != ref.shape or ref.size == 0 or not np.all(np.isfinite(out)):
        return Agreement(0.0, float("inf"), n, False, min_top1_agreement, max_rel_l2)
    r2, o2 = ref.reshape(n, -1), out.reshape(n, -1)
    agree = float(np.mean(np.argmax(r2, axis=1) == np.argmax(o2, axis=1)))
    norm = float(np.linalg.norm(r2))
    rel = float(np.linalg.norm(o2 - r2) / norm) if norm > 0 else float(np.linalg.norm(o2))
    ok = agree >= min_top1_agreement and rel <= max_rel_l2
    return Agreement(agree, rel, n, ok, min_top1_agreement, max_rel_l2)


def write_check_file(
    onnx_path: str, x: np.ndarray, fp32_output: np.ndarray, rule: Agreement | None = None
) -> str:
    """``X.check.npz`` beside the int8 ``X.onnx``: the check inputs, the fp32 outputs and
    the int8 rule's bounds, so the device agent judges the int8 outputs by that rule."""
    from edgeprune.deploy_agent.edgeprune_agent import check_path
    from edgeprune.fileio import atomic_write

    lo = rule.min_top1_agreement if rule else MIN_TOP1_AGREEMENT
    hi = rule.max_rel_l2 if rule else MAX_REL_L2
    path = check_path(onnx_path)
    atomic_write(
        path,
        lambda tmp: np.savez(
            tmp,
            input=np.asarray(x, np.float32),
            output=np.asarray(fp32_output, np.float32),
            min_top1_agreement=np.float64(lo),
            max_rel_l2=np.float64(hi),
        ),
    )
    return path
