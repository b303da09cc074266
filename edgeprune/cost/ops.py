"""Executed-op lists ("layer configs") of a model, for the latency predictor.

``extract_ops(model, input_size)`` traces a module once (torch.fx + shape propagation)
and returns the ops the runtime executes after its usual fusions (Conv+BN+ReLU as one
``conv``; a residual add with its ReLU as one ``add``; option-A shortcuts as
``pad_shortcut``; pooling; linear). Each op names the layer whose width sets its input
and output channels (``c_in_from`` / ``c_out_from``), so a budget controller can re-price
other widths without rebuilding the model::

    ops = extract_ops(model, (3, 32, 32))
    resolve_op(ops[3], {"layer1.0.conv1": 9})   # -> (c_in, c_out) for those widths

Widths are output-channel counts keyed by conv layer name (the names of
``model.named_modules()``, the same keys as a ``Plan``). A conv of width 0 removes itself
and the conv that reads it (a dropped block); the block's residual add stays, as the add of
the bias the removed branch still contributed (``surgery.blocks.BlockBypass``).

Besides convs, adds and pools it lists the ops of mobile and transformer-style networks:
standalone activations (``hardsigmoid``, ``hardswish``, ``silu``, ``sigmoid``, ``gelu``),
the squeeze-and-excitation multiply (``mul``, a map times a per-channel factor), grouped
convs (``conv`` with ``groups`` > 1), channel ``shuffle`` (kernel = its groups), ``concat``
(kernel = the number of inputs) and ``layernorm``. A layer it does not know becomes an
``unknown`` op naming its module path and type: counting ignores it, and only a latency
prediction refuses it (in one sentence naming the command that profiles it).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from edgeprune.errors import UserError

# Modules traced as leaves and priced as an option-A shortcut (strided slice + zero pad).
SHORTCUT_LEAF_NAMES = ("ShortcutA", "LambdaLayer")


@dataclass(frozen=True)
class LayerOp:
    """One executed op with its channel counts in the traced (dense) model."""

    name: str
    op: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    h_in: int
    w_in: int
    groups: int = 1
    c_in_from: str | None = None
    c_out_from: str | None = None
    branch: str | None = None  # add: the conv producing the residual branch
    module: str | None = None  # the module type (for messages; an ``unknown`` op's only key)
    c_in_mult: int = 1  # linear after a flatten: input features per source channel
    extra_params: int = 0  # per output channel besides the weights (bias, folded norm)
    kernel_w: int = 0  # a conv's kernel width where it differs from ``kernel`` (1x7: 7)
    out_hw: tuple[int, int] | None = None  # a conv's output size (padding), when traced
    parts: tuple = ()  # a concat: (source layer or None, dense channels) of each input

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> LayerOp:
        d = dict(d)
        if d.get("out_hw") is not None:
            d["out_hw"] = tuple(d["out_hw"])
        d["parts"] = tuple(tuple(p) for p in d.get("parts") or ())
        return cls(**d)


def resolve_op(
    op: LayerOp, widths: Mapping[str, int] | None, by_name: Mapping[str, LayerOp] | None = None
) -> tuple[int, int]:
    """(c_in, c_out) of an op under a width override; (0, 0) when the op is removed.
    An op reading a concat takes the concat's width: the sum of its inputs' widths. The add
    of a dropped block stays at its stream's width: surgery leaves ``shortcut + bias``
    (``BlockBypass``), an add the runtime still executes."""
    if not widths:
        return op.c_in, op.c_out
    ci = _width(op.c_in_from, widths, by_name, op.c_in // op.c_in_mult) * op.c_in_mult
    co = _width(op.c_out_from, widths, by_name, op.c_out)
    if ci == 0 or co == 0:
        return 0, 0
    return int(ci), int(co)


def _width(src, widths: Mapping[str, int], by_name, dense: int) -> int:
    """The width of source ``src`` (a layer, or a concat of sources) under ``widths``."""
    if src is None:
        return dense
    if src in widths:
        return widths[src]
    cat = by_name.get(src) if by_name is not None else None
    if cat is not None and cat.op == "concat" and cat.parts:
        return sum(_width(s, widths, by_name, c) for s, c in cat.parts)
    return dense


def width_sources(src, by_name: Mapping[str, LayerOp]) -> set[str]:
    """The layers whose widths set source ``src``'s width (a concat's: all its inputs')."""
    cat = by_name.get(src) if src is not None else None
    if cat is not None and cat.op == "concat" and cat.parts:
        return set().union(*(width_sources(s, by_name) for s, _ in cat.parts if s))
    return {src} if src is not None else set()


def dense_widths(ops: Sequence[LayerOp]) -> dict[str, int]:
    """Output width of every conv/linear layer in the traced model."""
    return {o.name: o.c_out for o in ops if o.op in ("conv", "linear")}


def _is_shortcut(mod) -> bool:
    return type(mod).__name__ in SHORTCUT_LEAF_NAMES


def _trace(model, input_size: Sequence[int], batch: int):
    import torch
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):  # noqa: D401
            return _is_shortcut(m) or super().is_leaf_module(m, qualname)

    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise UserError(
            f"cannot trace {type(model).__name__} for latency prediction ({exc})"
        ) from None
    gm = fx.GraphModule(model, graph)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(batch, *input_size))
    finally:
        model.train(was_training)
    return gm


def _shape(node):
    meta = getattr(node, "meta", {}).get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


_PASS_MODULES = (
    "BatchNorm2d",
    "ReLU",
    "ReLU6",
    "Hardtanh",
    "Dropout",
    "Identity",
    "Flatten",
    "StochasticDepth",
)
_PASS_FUNCS = {
    "relu",
    "relu_",
    "relu6",
    "hardtanh",
    "dropout",
    "flatten",
    "stochastic_depth",
    "contiguous",
}
# standalone elementwise activations (module type or function name -> op)
ACTIVATIONS = {
    "Hardsigmoid": "hardsigmoid",
    "Hardswish": "hardswish",
    "SiLU": "silu",
    "Sigmoid": "sigmoid",
    "GELU": "gelu",
    "hardsigmoid": "hardsigmoid",
    "hardswish": "hardswish",
    "silu": "silu",
    "sigmoid": "sigmoid",
    "gelu": "gelu",
}
_MUL_NAMES = ("mul", "mul_", "imul")


class _Walk:
    """State of one pass over the traced graph."""

    def __init__(self):
        self.src: dict = {}  # node -> layer whose width sets its channels (None: fixed)
        self.conv_of: dict = {}  # node -> conv that produced it (through BN/act)
        self.ops: list[LayerOp] = []
        self.pads: dict[str, int] = {}  # pad op -> index in ops; c_out source set at the add
        self.width: dict[str, int] = {}  # layer -> its dense output width
        self.index: dict[str, int] = {}  # layer -> index of its op
        self.raw: dict = {}  # node -> its first input's source, unchecked
        self.last: dict = {}  # node -> True when its map is channels-last (N, H, W, C)

    def add(self, op: LayerOp) -> None:
        self.index[op.name] = len(self.ops)
        self.ops.append(op)

    def bump_params(self, name: str | None, n: int) -> None:
        """Add ``n`` per-channel parameters (a folded norm) to conv ``name``."""
        i = self.index.get(name) if name else None
        if i is not None:
            old = self.ops[i]
            self.ops[i] = LayerOp(**{**old.to_dict(), "extra_params": old.extra_params + n})

    def source(self, first, shape):
        """The source a node inherits from its first input, kept only while its tensor
        still has that source's channel count (a split or reshape makes it fixed)."""
        s = self.src.get(first) if first is not None else None
        if isinstance(s, str) and shape is not None and len(shape) >= 2:
            if self.width.get(s) not in (shape[1], shape[-1]):
                return None
        return s


def _spatial(shape) -> tuple[int, int]:
    """(h, w) of an activation: NCHW maps give H, W; token tensors give (tokens, 1)."""
    if shape is None or len(shape) < 3:
        return 1, 1
    if len(shape) == 4:
        return int(shape[2]), int(shape[3])
    n = 1
    for d in shape[1:-1]:
        n *= int(d)
    return n, 1


def _channels(shape) -> int:
    return int(shape[1]) if shape is not None and len(shape) >= 2 else 1


def extract_ops(model, input_size: Sequence[int], batch: int = 1) -> list[LayerOp]:
    """Trace ``model`` on a ``(C, H, W)`` input and list the ops the runtime executes."""
    import torch

    gm = _trace(model, input_size, batch)
    modules = dict(gm.named_modules())
    st = _Walk()
    for node in gm.graph.nodes:
        tensor_args = [a for a in node.args if isinstance(a, torch.fx.Node)]
        first = tensor_args[0] if tensor_args else None
        in_shape = _shape(first) if first is not None else None
        out_shape = _shape(node)
        st.src[node] = st.source(first, in_shape)
        st.raw[node] = st.src.get(first) if first is not None else None
        st.last[node] = st.last.get(first, False)
        st.conv_of[node] = None
        if node.op == "call_module":
            _module_op(st, node, modules[node.target], first, in_shape, out_shape)
        elif node.op in ("call_function", "call_method"):
            _function_op(st, node, tensor_args, first, in_shape, out_shape)
    return st.ops


def _module_op(st: _Walk, node, mod, first, in_shape, out_shape) -> None:
    from torch import nn

    name = str(node.target)
    kind = type(mod).__name__
    src = st.src[node]
    if isinstance(mod, nn.Conv2d):
        ci, co = int(mod.in_channels), int(mod.out_channels)
        k, s = int(mod.kernel_size[0]), int(mod.stride[0])
        h, w = int(in_shape[2]), int(in_shape[3])
        bias = 1 if mod.bias is not None else 0
        kw = int(mod.kernel_size[1]) if int(mod.kernel_size[1]) != k else 0
        shape = dict(kernel_w=kw, out_hw=(int(out_shape[2]), int(out_shape[3])))
        if mod.groups > 1 and mod.groups == ci == co:
            st.add(
                LayerOp(
                    name, "dwconv", ci, co, k, s, h, w, ci, src, src, None, kind, 1, bias, **shape
                )
            )
        else:
            g = int(mod.groups)
            st.add(
                LayerOp(
                    name, "conv", ci, co, k, s, h, w, g, src, name, None, kind, 1, bias, **shape
                )
            )
            st.src[node] = name
            st.width[name] = co
        st.conv_of[node] = name
    elif isinstance(mod, nn.Linear):
        raw = st.raw[node] if isinstance(st.raw[node], str) else None
        st.add(_linear_op(st, name, mod.in_features, mod.out_features, raw, in_shape, mod))
        st.src[node] = None
    elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
        st.add(_pool_op(name, in_shape, out_shape, src))
    elif isinstance(mod, nn.MaxPool2d):
        k, s = _pair0(mod.kernel_size), _pair0(mod.stride)
        c, h, w = in_shape[1], in_shape[2], in_shape[3]
        st.add(LayerOp(name, "maxpool", c, out_shape[1], k, s, h, w, 1, src, src, None, kind))
    elif _is_shortcut(mod):
        stride = max(1, int(round(in_shape[2] / out_shape[2])))
        st.pads[name] = len(st.ops)
        c_in, c_out, h, w = in_shape[1], out_shape[1], in_shape[2], in_shape[3]
        st.add(
            LayerOp(name, "pad_shortcut", c_in, c_out, 1, stride, h, w, 1, src, None, None, kind)
        )
        st.src[node] = ("pad", name)
    elif isinstance(mod, nn.BatchNorm2d):
        st.conv_of[node] = st.conv_of.get(first)
        st.bump_params(st.conv_of[node], 2 if mod.affine else 0)
    elif kind in _PASS_MODULES:
        st.conv_of[node] = st.conv_of.get(first)
    elif kind in ACTIVATIONS:
        st.add(_elementwise(name, ACTIVATIONS[kind], out_shape, src, kind, st.last[node]))
        st.conv_of[node] = st.conv_of.get(first)
    elif isinstance(mod, nn.LayerNorm):
        st.add(_layernorm_op(name, mod.normalized_shape, out_shape, src, kind))
    else:
        c, (h, w) = _channels(out_shape), _spatial(out_shape)
        st.add(LayerOp(name, "unknown", c, c, 1, 1, h, w, 1, src, src, None, kind))


def _function_op(st: _Walk, node, tensor_args, first, in_shape, out_shape) -> None:
    import torch

    fname = getattr(node.target, "__name__", str(node.target))
    src = st.src[node]
    four_d = out_shape is not None and len(out_shape) == 4
    if node.target in (operator.add, torch.add) or fname in ("add", "add_", "iadd"):
        if len(tensor_args) == 2 and four_d:
            st.add(_add_op(node, tensor_args, out_shape, st))
            st.src[node] = st.ops[-1].c_out_from
    elif node.target in (operator.mul, torch.mul) or fname in _MUL_NAMES:
        maps = [a for a in tensor_args if _is_map(_shape(a))]
        if len(tensor_args) == 2 and four_d and maps:
            big = max(maps, key=lambda a: _shape(a)[2] * _shape(a)[3])
            s = st.source(big, _shape(big))
            st.add(_elementwise(node.name, "mul", out_shape, s, "mul"))
            st.src[node] = s
            st.conv_of[node] = st.conv_of.get(big)
    elif fname in ("adaptive_avg_pool2d", "avg_pool2d", "mean"):
        if out_shape is not None and in_shape is not None and len(in_shape) == 4:
            st.add(_pool_op(f"{node.name}", in_shape, out_shape, src))
    elif fname == "permute" and len(node.args) > 1:
        dims = node.args[1] if isinstance(node.args[1], (list, tuple)) else node.args[1:]
        if tuple(dims) in ((0, 2, 3, 1), (0, 3, 1, 2)):
            st.last[node] = tuple(dims) == (0, 2, 3, 1)
    elif fname in ACTIVATIONS:
        if out_shape is not None and len(out_shape) >= 2:
            last = st.last[node]
            st.add(_elementwise(node.name, ACTIVATIONS[fname], out_shape, src, fname, last))
            st.conv_of[node] = st.conv_of.get(first)
    elif fname == "layer_norm":
        normalized = node.args[1] if len(node.args) > 1 else node.kwargs.get("normalized_shape")
        st.add(_layernorm_op(node.name, normalized, out_shape, src, "layer_norm"))
    elif fname == "cat" and four_d:
        st.add(_concat_op(st, node, out_shape))
        st.src[node] = st.ops[-1].c_out_from
    elif fname == "transpose" and in_shape is not None and len(in_shape) == 5:
        g, c = int(in_shape[1]), int(in_shape[1] * in_shape[2])
        h, w = int(in_shape[3]), int(in_shape[4])
        st.add(LayerOp(node.name, "shuffle", c, c, g, 1, h, w, 1, None, None, None, "shuffle"))
    elif fname in _PASS_FUNCS:
        st.conv_of[node] = st.conv_of.get(first)


def _concat_op(st: _Walk, node, out_shape) -> LayerOp:
    """A channel concat; its width follows its inputs' (``parts``) when any is prunable,
    and the ops reading it take that width (its name is their source)."""
    import torch

    args = node.args[0] if node.args else node.kwargs.get("tensors", ())
    args = list(args) if isinstance(args, (list, tuple)) else [args]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    parts = tuple(
        (s if isinstance(s := st.src.get(a), str) else None, _channels(_shape(a)))
        for a in args
        if isinstance(a, torch.fx.Node)
    )
    c, h, w = int(out_shape[1]), int(out_shape[2]), int(out_shape[3])
    if dim not in (1, -3) or not any(s for s, _ in parts):
        parts, src = (), None  # fixed width: no input is prunable (or not a channel concat)
    else:
        src = node.name
        st.width[src] = c
    n = max(1, len(args))
    return LayerOp(node.name, "concat", c, c, n, 1, h, w, 1, src, src, None, "cat", parts=parts)


def _is_map(shape) -> bool:
    return shape is not None and len(shape) == 4


def _elementwise(name, op, shape, src, kind, last: bool = False) -> LayerOp:
    """An elementwise op; ``last``: on a channels-last (N, H, W, C) map."""
    c = int(shape[-1]) if len(shape) == 3 or last else _channels(shape)
    h, w = (int(shape[1]), int(shape[2])) if last and len(shape) == 4 else _spatial(shape)
    return LayerOp(name, op, c, c, 1, 1, h, w, 1, src, src, None, kind)


def _layernorm_op(name, normalized, shape, src, kind) -> LayerOp:
    dims = tuple(normalized) if isinstance(normalized, (list, tuple)) else (int(normalized),)
    c = int(dims[-1]) if dims else _channels(shape)
    if shape is not None and len(shape) == 4 and int(shape[1]) == c:
        h, w = int(shape[2]), int(shape[3])  # LayerNorm over the channels of an NCHW map
    elif shape is not None and len(shape) == 4:
        h, w = int(shape[1]), int(shape[2])  # channels-last map (N, H, W, C)
    else:
        h, w = _spatial(shape)
    return LayerOp(name, "layernorm", c, c, 1, 1, h, w, 1, src, src, None, kind, 1, 2)


def _linear_op(st: _Walk, name, f_in, f_out, src, in_shape, mod) -> LayerOp:
    """A linear layer; ``h_in`` counts the tokens it runs on (1 after a flatten)."""
    f_in, f_out = int(f_in), int(f_out)
    mult = 1
    if isinstance(src, str) and st.width.get(src) not in (None, f_in):
        dense = st.width[src]
        mult = f_in // dense if f_in % dense == 0 else 0
        src = src if mult else None  # a flattened map of that source's channels
        mult = max(1, mult)
    h, w = 1, 1
    for d in (in_shape or ())[1:-1]:  # the positions it runs on (tokens, or H x W)
        h *= int(d)
    bias = 1 if getattr(mod, "bias", None) is not None else 0
    return LayerOp(
        name, "linear", f_in, f_out, 1, 1, h, w, 1, src, None, None, "Linear", mult, bias
    )


def _pair0(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def _pool_op(name, in_shape, out_shape, c_src) -> LayerOp:
    h, w = int(in_shape[2]), int(in_shape[3])
    return LayerOp(name, "pool", in_shape[1], in_shape[1], h, 1, h, w, 1, c_src, c_src)


def _add_op(node, tensor_args, out_shape, st: _Walk) -> LayerOp:
    src, conv_of, ops, pads = st.src, st.conv_of, st.ops, st.pads
    srcs = [src.get(a) for a in tensor_args]
    real = [s for s in srcs if s is not None and not isinstance(s, tuple)]
    c_src = real[-1] if real else None
    for s in srcs:  # an option-A pad takes its output width from the branch it is added to
        if isinstance(s, tuple) and s[1] in pads:
            i = pads[s[1]]
            old = ops[i]
            ops[i] = LayerOp(**{**old.to_dict(), "c_out_from": c_src})
    order = {o.name: i for i, o in enumerate(ops)}
    branches = [conv_of.get(a) for a in tensor_args if conv_of.get(a) in order]
    branch = max(branches, key=order.__getitem__) if branches else None
    c, h, w = int(out_shape[1]), int(out_shape[2]), int(out_shape[3])
    # kernel = that of the conv feeding the add: whether the runtime fuses the add into it
    # depends on that conv, so adds are priced in that context.
    k = ops[order[branch]].kernel if branch else 1
    if branch and (k % 2 == 0 or ops[order[branch]].stride != 1):
        k = 1  # a patchify conv (ConvNeXt's stem): priced as an add after a 1x1 conv
    return LayerOp(node.name, "add", c, c, k, 1, h, w, 1, c_src, c_src, branch)
