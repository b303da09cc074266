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
``model.named_modules()``, the same keys as a ``Plan``). A conv of width 0 removes itself,
the conv that reads it, and the residual add of that branch (a dropped block).
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> LayerOp:
        return cls(**dict(d))


def resolve_op(
    op: LayerOp, widths: Mapping[str, int] | None, by_name: Mapping[str, LayerOp] | None = None
) -> tuple[int, int]:
    """(c_in, c_out) of an op under a width override; (0, 0) when the op is removed."""
    if not widths:
        return op.c_in, op.c_out
    ci = widths.get(op.c_in_from, op.c_in) if op.c_in_from else op.c_in
    co = widths.get(op.c_out_from, op.c_out) if op.c_out_from else op.c_out
    if op.op == "add" and op.branch and by_name is not None:
        br = by_name.get(op.branch)
        if br is not None and 0 in resolve_op(br, widths):
            return 0, 0
    if ci == 0 or co == 0:
        return 0, 0
    return int(ci), int(co)


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
    "SiLU",
    "Hardswish",
)
_PASS_FUNCS = {"relu", "relu_", "relu6", "hardtanh", "dropout", "flatten", "silu", "hardswish"}


def extract_ops(model, input_size: Sequence[int], batch: int = 1) -> list[LayerOp]:
    """Trace ``model`` on a ``(C, H, W)`` input and list the ops the runtime executes."""
    import torch
    from torch import nn

    gm = _trace(model, input_size, batch)
    modules = dict(gm.named_modules())
    src: dict = {}  # node -> name of the layer whose width sets its channels (None: fixed)
    conv_of: dict = {}  # node -> conv that produced it (through BN/act)
    ops: list[LayerOp] = []
    pads: dict[str, int] = {}  # pad op name -> index in ops, c_out source fixed at the add

    for node in gm.graph.nodes:
        tensor_args = [a for a in node.args if isinstance(a, torch.fx.Node)]
        first = tensor_args[0] if tensor_args else None
        in_shape = _shape(first) if first is not None else None
        out_shape = _shape(node)
        src[node] = src.get(first) if first is not None else None
        conv_of[node] = None
        if node.op == "call_module":
            mod = modules[node.target]
            name = str(node.target)
            if isinstance(mod, nn.Conv2d):
                ci, co = int(mod.in_channels), int(mod.out_channels)
                k, s = int(mod.kernel_size[0]), int(mod.stride[0])
                h, w = int(in_shape[2]), int(in_shape[3])
                if mod.groups > 1 and mod.groups == ci == co:
                    ops.append(
                        LayerOp(name, "dwconv", ci, co, k, s, h, w, ci, src[node], src[node])
                    )
                else:
                    ops.append(
                        LayerOp(name, "conv", ci, co, k, s, h, w, int(mod.groups), src[node], name)
                    )
                    src[node] = name
                conv_of[node] = name
            elif isinstance(mod, nn.Linear):
                ops.append(
                    LayerOp(
                        name,
                        "linear",
                        mod.in_features,
                        mod.out_features,
                        1,
                        1,
                        1,
                        1,
                        1,
                        src[node],
                        None,
                    )
                )
                src[node] = None
            elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
                ops.append(_pool_op(name, in_shape, out_shape, src[node]))
            elif isinstance(mod, nn.MaxPool2d):
                k, s = _pair0(mod.kernel_size), _pair0(mod.stride)
                ops.append(
                    LayerOp(
                        name,
                        "maxpool",
                        in_shape[1],
                        out_shape[1],
                        k,
                        s,
                        in_shape[2],
                        in_shape[3],
                        1,
                        src[node],
                        src[node],
                    )
                )
            elif _is_shortcut(mod):
                stride = max(1, int(round(in_shape[2] / out_shape[2])))
                pads[name] = len(ops)
                ops.append(
                    LayerOp(
                        name,
                        "pad_shortcut",
                        in_shape[1],
                        out_shape[1],
                        1,
                        stride,
                        in_shape[2],
                        in_shape[3],
                        1,
                        src[node],
                        None,
                    )
                )
                src[node] = ("pad", name)
            elif type(mod).__name__ in _PASS_MODULES:
                conv_of[node] = conv_of.get(first)
            else:
                raise UserError(
                    f"latency prediction does not know layer {name} ({type(mod).__name__})"
                )
        elif node.op in ("call_function", "call_method"):
            fname = getattr(node.target, "__name__", str(node.target))
            if node.target in (operator.add, torch.add) or fname in ("add", "add_", "iadd"):
                if len(tensor_args) == 2 and out_shape is not None and len(out_shape) == 4:
                    ops.append(_add_op(node, tensor_args, out_shape, src, conv_of, ops, pads))
                    src[node] = ops[-1].c_out_from
            elif fname in ("adaptive_avg_pool2d", "avg_pool2d", "mean"):
                if out_shape is not None and in_shape is not None and len(in_shape) == 4:
                    ops.append(_pool_op(f"{node.name}", in_shape, out_shape, src[node]))
            elif fname in _PASS_FUNCS:
                conv_of[node] = conv_of.get(first)
    return ops


def _pair0(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def _pool_op(name, in_shape, out_shape, c_src) -> LayerOp:
    h, w = int(in_shape[2]), int(in_shape[3])
    return LayerOp(name, "pool", in_shape[1], in_shape[1], h, 1, h, w, 1, c_src, c_src)


def _add_op(node, tensor_args, out_shape, src, conv_of, ops, pads) -> LayerOp:
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
    return LayerOp(node.name, "add", c, c, k, 1, h, w, 1, c_src, c_src, branch)
