#!/usr/bin/env python3
"""Build a TensorRT engine from ONNX with the TensorRT Python API (runs on the device).

Standalone (needs only the ``tensorrt`` package that JetPack / the TensorRT wheels ship)::

    python3 trt_build.py --onnx model.onnx --engine model.engine --shape input:1x3x32x32 --fp16

``--int8`` builds a model with Q/DQ nodes (ONNX Runtime's QDQ format) as INT8 by TensorRT's
explicit quantization: the scales come from the Q/DQ nodes, no calibrator is set.

prints one JSON line: {"engine": ..., "tensorrt_version": ..., "build_s": ...} or {"error": ...}.
edgeprune then times the engine with ``trtexec --loadEngine``.
"""

import argparse
import json
import os
import sys
import time


def build_engine(onnx_path, engine_path, shape_spec, fp16=False, workspace_mb=1024, int8=False):
    """Parse ``onnx_path``, build for the fixed shape ``name:BxCxHxW``, write the engine."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # implicit in TRT >= 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as fh:
        if not parser.parse(fh.read()):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError("TensorRT could not parse the ONNX model: " + errs)
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    else:  # TensorRT < 8.4
        config.max_workspace_size = workspace_mb << 20
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:  # explicit quantization: Q/DQ scales, no calibrator
        config.set_flag(trt.BuilderFlag.INT8)
    name, _, dims = shape_spec.partition(":")
    shape = tuple(int(d) for d in dims.split("x"))
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        inp = network.get_input(i)
        if inp.name == name or network.num_inputs == 1:
            profile.set_shape(inp.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see the log above)")
    tmp = engine_path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(serialized)
    os.replace(tmp, engine_path)
    return trt.__version__


def get_args_parser():
    p = argparse.ArgumentParser(description="Build a TensorRT engine from an ONNX model.")
    p.add_argument("--onnx", required=True)
    p.add_argument("--engine", required=True)
    p.add_argument("--shape", required=True, help="input shape as name:BxCxHxW")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--int8", action="store_true", help="a Q/DQ model: explicit quantization")
    p.add_argument("--workspace-mb", type=int, default=1024)
    return p


def main(args):
    t0 = time.time()
    try:
        version = build_engine(
            args.onnx, args.engine, args.shape, args.fp16, args.workspace_mb, args.int8
        )
    except Exception as exc:  # report as one JSON line; the host turns it into one sentence
        print(json.dumps({"error": str(exc)}))
        return 1
    print(
        json.dumps(
            {
                "engine": args.engine,
                "tensorrt_version": version,
                "build_s": round(time.time() - t0, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
