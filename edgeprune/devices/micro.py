"""Micro ONNX models for profiling, built with ``onnx.helper`` (no torch export).

Every builder returns ``(ModelProto, units)``: the latency of the model minus a baseline,
divided by ``units``, is the marginal cost of one op. Shapes follow what ``torch.onnx``
exports after folding BatchNorm into the conv (Conv with bias, then Relu).

``chain``     N units of conv(a->b)+relu [+ conv(b->a)+relu]: in-context, stride-1 convs
``dwchain``   N depthwise convs (+relu)
``residual``  N units of convk(c->c)+relu, convk(c->c) + Add(x) + Relu, and its ``plain``
              twin without the add: the difference is the marginal cost of the add after a
              k x k conv (fused into it by the runtime or not), capped by a lone Add+Relu
``single``    one op (strided and grouped convs, option-A shortcut, pooling, linear, first
              conv, activations, the SE multiply, channel shuffle, concat, LayerNorm)
``baseline``  a 1x1x1x1 Relu: per-inference overhead, subtracted from ``single``
``qdq_boundary``  Quantize+DequantizeLinear on a job's input shape: an int8 twin's baseline
"""

from __future__ import annotations

import numpy as np

from edgeprune.errors import require

OPSET = 17


def _h():
    onnx = require("onnx", "onnx")
    return onnx, onnx.helper, onnx.TensorProto


class _Builder:
    def __init__(self, seed: int = 0):
        self.onnx, self.helper, self.tp = _h()
        self.nodes, self.inits = [], []
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, arr: np.ndarray) -> str:
        name = self.name("w")
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def conv(self, x, c_in, c_out, k, stride=1, groups=1, relu=True, kw=0):
        kw = kw or k  # kernel width (a 1x7 conv: k=1, kw=7)
        w = self.const(
            (self.rng.standard_normal((c_out, c_in // groups, k, kw)) * 0.1).astype(np.float32)
        )
        b = self.const((self.rng.standard_normal(c_out) * 0.1).astype(np.float32))
        y = self.name("t")
        p, q = k // 2, kw // 2
        self.nodes.append(
            self.helper.make_node(
                "Conv",
                [x, w, b],
                [y],
                kernel_shape=[k, kw],
                strides=[stride, stride],
                pads=[p, q, p, q],
                group=groups,
            )
        )
        return self.relu(y) if relu else y

    def relu(self, x):
        y = self.name("t")
        self.nodes.append(self.helper.make_node("Relu", [x], [y]))
        return y

    def op(self, kind, inputs, **attrs):
        y = self.name("t")
        self.nodes.append(self.helper.make_node(kind, inputs, [y], **attrs))
        return y

    def model(self, in_shape, x, y):
        h, tp = self.helper, self.tp
        graph = h.make_graph(
            self.nodes,
            "micro",
            [h.make_tensor_value_info(x, tp.FLOAT, list(in_shape))],
            [h.make_tensor_value_info(y, tp.FLOAT, None)],
            initializer=self.inits,
        )
        m = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)])
        m.ir_version = 8
        return m


def conv_chain(c_a: int, c_b: int, k: int, h: int, w: int, units: int, batch: int = 1, kw: int = 0):
    """``units`` x [conv(a->b)+relu, conv(b->a)+relu] (one conv per unit when a == b);
    ``kw``: the kernel's width where it differs from ``k`` (a 1x7 conv)."""
    b = _Builder()
    x = y = "x"
    for _ in range(units):
        y = b.conv(y, c_a, c_b, k, kw=kw)
        if c_a != c_b:
            y = b.conv(y, c_b, c_a, k, kw=kw)
    return b.model((batch, c_a, h, w), x, y), units * (1 if c_a == c_b else 2)


def dw_chain(c: int, k: int, h: int, w: int, units: int, batch: int = 1, kw: int = 0):
    """``units`` depthwise convs (+relu) on ``c`` channels (``kw``: as in conv_chain)."""
    b = _Builder()
    y = "x"
    for _ in range(units):
        y = b.conv(y, c, c, k, groups=c, kw=kw)
    return b.model((batch, c, h, w), "x", y), units


def residual_chain(c: int, k: int, h: int, w: int, units: int, residual: bool, batch: int = 1):
    """``units`` x [convk+relu, convk [+ add(x)] + relu]: the difference prices the add."""
    b = _Builder()
    y = "x"
    for _ in range(units):
        z = b.conv(b.conv(y, c, c, k), c, c, k, relu=not residual)
        y = b.relu(b.op("Add", [z, y])) if residual else z
    return b.model((batch, c, h, w), "x", y), units


def single(
    op: str,
    c_in: int,
    c_out: int,
    k: int,
    s: int,
    h: int,
    w: int,
    batch: int = 1,
    groups: int = 1,
    kw: int = 0,
):
    """One op of the table (any stride; ``groups`` for a grouped conv; ``kw`` a conv's
    kernel width where it differs from ``k``), for ``single`` rows."""
    b = _Builder()
    shape = (batch, c_in, h, w)
    if op == "conv":
        y = b.conv("x", c_in, c_out, k, s, groups=groups, kw=kw)
    elif op == "dwconv":
        y = b.conv("x", c_in, c_in, k, s, groups=c_in, kw=kw)
    elif op == "pad_shortcut":
        starts = b.const(np.array([0, 0], np.int64))
        ends = b.const(np.array([h, w], np.int64))
        axes = b.const(np.array([2, 3], np.int64))
        steps = b.const(np.array([s, s], np.int64))
        y = b.op("Slice", ["x", starts, ends, axes, steps])
        lo = (c_out - c_in) // 2
        pads = b.const(np.array([0, lo, 0, 0, 0, c_out - c_in - lo, 0, 0], np.int64))
        y = b.op("Pad", [y, pads], mode="constant")
    elif op == "pool":
        y = b.op("GlobalAveragePool", ["x"])
    elif op == "maxpool":
        p = k // 2
        y = b.op("MaxPool", ["x"], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
    elif op == "linear" and h * w > 1:  # on tokens: (batch, h*w, c_in) @ W + b
        shape = (batch, h * w, c_in)
        wt = b.const((b.rng.standard_normal((c_in, c_out)) * 0.1).astype(np.float32))
        bias = b.const(np.zeros(c_out, np.float32))
        y = b.op("Add", [b.op("MatMul", ["x", wt]), bias])
    elif op == "linear":
        shape = (batch, c_in)
        wt = b.const((b.rng.standard_normal((c_out, c_in)) * 0.1).astype(np.float32))
        bias = b.const(np.zeros(c_out, np.float32))
        y = b.op("Gemm", ["x", wt, bias], transB=1)
    elif op == "add":
        y = b.relu(b.op("Add", ["x", "x"]))
    elif op in _ELEMENTWISE:
        shape, y = _elementwise(b, op, c_in, k, h, w, batch)
    else:
        raise ValueError(f"no micro model for op {op}")
    return b.model(shape, "x", y), 1


_ACT_NODES = {"hardsigmoid": "HardSigmoid", "hardswish": "HardSwish", "sigmoid": "Sigmoid"}
_ELEMENTWISE = ("hardsigmoid", "hardswish", "silu", "sigmoid", "gelu", "mul", "shuffle")
_ELEMENTWISE += ("concat", "layernorm")


def _elementwise(b: _Builder, op: str, c: int, k: int, h: int, w: int, batch: int):
    """(input shape, output) of one elementwise-style op as torch.onnx exports it."""
    shape = (batch, c, h, w)
    if op in _ACT_NODES:
        attrs = {"alpha": 1.0 / 6.0} if op == "hardsigmoid" else {}
        return shape, b.op(_ACT_NODES[op], ["x"], **attrs)
    if op == "silu":
        return shape, b.op("Mul", ["x", b.op("Sigmoid", ["x"])])
    if op == "gelu":  # the erf form torch exports below opset 20
        half = b.const(np.array(0.5, np.float32))
        one = b.const(np.array(1.0, np.float32))
        inv = b.const(np.array(1.0 / np.sqrt(2.0), np.float32))
        erf = b.op("Erf", [b.op("Mul", ["x", inv])])
        return shape, b.op("Mul", [b.op("Mul", ["x", half]), b.op("Add", [erf, one])])
    if op == "mul":  # squeeze-and-excitation: the map times a per-channel factor
        factor = b.const(b.rng.random((batch, c, 1, 1)).astype(np.float32))
        return shape, b.op("Mul", ["x", factor])
    if op == "shuffle":  # k groups: reshape, transpose, reshape
        g = max(1, k)
        s5 = b.const(np.array([batch, g, c // g, h, w], np.int64))
        s4 = b.const(np.array([batch, c, h, w], np.int64))
        t = b.op("Transpose", [b.op("Reshape", ["x", s5])], perm=[0, 2, 1, 3, 4])
        return shape, b.op("Reshape", [t, s4])
    if op == "concat":  # k inputs of about c/k channels each, sliced from one input
        n = max(1, k)
        cuts = [c * i // n for i in range(n + 1)]
        parts = []
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            args = [np.array([lo], np.int64), np.array([hi], np.int64), np.array([1], np.int64)]
            parts.append(b.op("Slice", ["x", *(b.const(a) for a in args)]))
        return shape, b.op("Concat", parts, axis=1)
    if op == "layernorm":  # over the channels of an NHWC map, as ConvNeXt runs it
        shape = (batch, h, w, c)
        scale = b.const(np.ones(c, np.float32))
        bias = b.const(np.zeros(c, np.float32))
        return shape, b.op("LayerNormalization", ["x", scale, bias], axis=-1, epsilon=1e-6)
    raise ValueError(f"no micro model for op {op}")


def baseline(batch: int = 1):
    """The per-inference overhead reference: Relu on a 1x1x1x1 tensor."""
    b = _Builder()
    return b.model((batch, 1, 1, 1), "x", b.relu("x")), 1


def qdq_boundary(shape):
    """What an int8 (QDQ) micro model pays beside its ops: QuantizeLinear of its input and
    DequantizeLinear back to float, on an input of ``shape`` (the int8 twins' baseline: a real
    int8 model pays this once, each micro model once per model)."""
    b = _Builder()
    scale = b.const(np.array(0.05, np.float32))
    zero = b.const(np.array(128, np.uint8))
    q = b.op("QuantizeLinear", ["x", scale, zero])
    return b.model(tuple(shape), "x", b.op("DequantizeLinear", [q, scale, zero])), 1


def input_shape(path: str) -> tuple[int, ...]:
    """The input shape of a saved micro model."""
    onnx, _, _ = _h()
    dims = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return tuple(int(d.dim_value) for d in dims)


def save(model, path: str) -> str:
    """Write a ModelProto to ``path``."""
    onnx, _, _ = _h()
    onnx.save(model, path)
    return path
