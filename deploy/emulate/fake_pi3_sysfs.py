"""Write a Raspberry Pi 3B+ /proc/cpuinfo and CPU sysfs tree under an aarch64 rootfs.

qemu-user (``-L ROOT``) opens ``ROOT/<path>`` before the host's ``<path>``; without these files
ONNX Runtime's CPU detection reads the x86 host's /proc/cpuinfo and crashes on import.
Usage: ``python3 fake_pi3_sysfs.py ROOT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

CORES = 4  # BCM2837B0: 4x Cortex-A53 at 1.4 GHz, 32 KB L1 I/D, 512 KB shared L2
CORE = """processor\t: {i}
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd03
CPU revision\t: 4
"""
TAIL = (
    "Hardware\t: BCM2835\nRevision\t: a020d3\n"
    "Model\t\t: qemu-emulated Raspberry Pi 3 Model B Plus (timings are not the device's)\n"
)
CACHES = [  # (index, level, type, size, ways, sets, shared)
    (0, 1, "Data", "32K", 4, 128, None),
    (1, 1, "Instruction", "32K", 2, 256, None),
    (2, 2, "Unified", "512K", 16, 512, f"0-{CORES - 1}"),
]


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")


def main(root: Path) -> None:
    write(root, "proc/cpuinfo", "\n".join(CORE.format(i=i) for i in range(CORES)) + "\n" + TAIL)
    cpus = f"0-{CORES - 1}"
    for name, value in (("possible", cpus), ("present", cpus), ("online", cpus)):
        write(root, f"sys/devices/system/cpu/{name}", value)
    write(root, "sys/devices/system/cpu/kernel_max", str(CORES - 1))
    for i in range(CORES):
        cpu = f"sys/devices/system/cpu/cpu{i}"
        write(root, f"{cpu}/cpufreq/cpuinfo_max_freq", "1400000")
        write(root, f"{cpu}/cpufreq/cpuinfo_min_freq", "600000")
        for name, value in (
            ("physical_package_id", "0"),
            ("core_id", str(i)),
            ("core_siblings_list", cpus),
            ("cluster_cpus_list", cpus),
            ("package_cpus_list", cpus),
            ("thread_siblings_list", str(i)),
        ):
            write(root, f"{cpu}/topology/{name}", value)
        for index, level, kind, size, ways, sets, shared in CACHES:
            base = f"{cpu}/cache/index{index}"
            for name, value in (
                ("level", str(level)),
                ("type", kind),
                ("size", size),
                ("ways_of_associativity", str(ways)),
                ("number_of_sets", str(sets)),
                ("coherency_line_size", "64"),
                ("shared_cpu_list", shared or str(i)),
            ):
                write(root, f"{base}/{name}", value)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fake_pi3_sysfs.py ROOT")
    main(Path(sys.argv[1]))
