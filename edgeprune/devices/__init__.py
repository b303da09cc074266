"""Device profiles (identity, connection, latency tables, calibration) and profiling sweeps.

``load_profile("xeon")`` -> ``DeviceProfile``; the sweep, micro models and end-to-end
calibration live in ``edgeprune.devices.sweep`` / ``micro`` / ``endtoend`` / ``profiling``
(imported on use: they need onnx / onnxruntime).
"""

from edgeprune.devices.profile import (
    Calibration,
    Connection,
    DeviceProfile,
    Identity,
    Provenance,
    TableRef,
    list_profiles,
    load_profile,
    save_profile,
    user_profiles_dir,
)

__all__ = [
    "Calibration",
    "Connection",
    "DeviceProfile",
    "Identity",
    "Provenance",
    "TableRef",
    "list_profiles",
    "load_profile",
    "save_profile",
    "user_profiles_dir",
]
