"""Running and scoring an ONNX model (fp32 or int8 QDQ) with ONNX Runtime on the host."""

from __future__ import annotations

import os

import numpy as np

from edgeprune.errors import require


def session(path: str | os.PathLike, threads: int | None = None):
    """A CPU ONNX Runtime session of ``path`` (``threads``: intra-op threads, None: ORT's)."""
    ort = require("onnxruntime", "onnx")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_onnx(path_or_session, x: np.ndarray) -> np.ndarray:
    """The first output of the model on the float32 batch ``x``."""
    sess = path_or_session if hasattr(path_or_session, "run") else session(path_or_session)
    return sess.run(None, {sess.get_inputs()[0].name: np.asarray(x, np.float32)})[0]


def score_onnx(
    path: str | os.PathLike, loader, limit_batches: int | None = None, threads: int | None = None
) -> dict:
    """{top1, top5, n} of the ONNX model on ``loader``'s (image, label) batches."""
    sess = session(path, threads)
    n = c1 = c5 = 0
    for i, (x, y) in enumerate(loader):
        if limit_batches is not None and i >= limit_batches:
            break
        logits = run_onnx(sess, x.numpy())
        y = np.asarray(y)
        k = min(5, logits.shape[1])
        top = np.argsort(-logits, axis=1)[:, :k]
        c1 += int((top[:, 0] == y).sum())
        c5 += int((top == y[:, None]).any(axis=1).sum())
        n += len(y)
    return {"top1": c1 / n if n else 0.0, "top5": c5 / n if n else 0.0, "n": n}
