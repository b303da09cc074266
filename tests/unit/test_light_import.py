import subprocess
import sys

HEAVY = ["onnx", "onnxruntime", "paramiko", "tensorrt", "matplotlib"]


def test_import_edgeprune_stays_light():
    code = (
        "import sys, edgeprune, edgeprune.models, edgeprune.surgery, edgeprune.cost, "
        "edgeprune.cli.main; edgeprune.cli.main.build_parser(); "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
