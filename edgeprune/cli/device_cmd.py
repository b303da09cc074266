"""`edgeprune device`: provision a device over SSH (`setup`) and list provisioned hosts."""

from __future__ import annotations

import argparse

from edgeprune.cli.args import add_device_args, add_ssh_args, ssh_options_from_args
from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edgeprune.runtimes import runtime_names

    p = sub.add_parser("device", help="provision a device (venv + runtime) and list devices")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=type(p))
    verbs.required = True
    setup = verbs.add_parser(
        "setup",
        help="create a venv on the device, install its runtime, record what the device is",
        description="Create a venv on the device (default ~/.edgeprune/venv), install the "
        "runtime's device-side packages with the device's own pip, record the device's CPU, "
        "ISA flags and runtime versions, and make that interpreter the default "
        "--remote-python of later profile/prune/bench/deploy runs on that host.",
    )
    add_device_args(setup, note="its host and runtime are the defaults")
    setup.add_argument("--runtime", choices=runtime_names(), help="default: the profile's, or ort")
    setup.add_argument("--venv", default="~/.edgeprune/venv", help="venv path on the device")
    setup.add_argument("--wheels", help="local folder of wheels: upload and install offline")
    setup.add_argument("--index-url", help="package index the device's pip uses")
    add_ssh_args(setup)
    verbs.add_parser("list", help="hosts set up so far, with their interpreter and CPU")
    return p


def run(args: argparse.Namespace) -> int:
    return _setup(args) if args.verb == "setup" else _list()


def _progress(msg: str) -> None:
    from edgeprune.log import get_logger

    get_logger("device").info(msg)


def _setup(args: argparse.Namespace) -> int:
    from edgeprune.workflows.device_setup import SetupConfig, setup_device

    host, key, runtime = args.host, args.key, args.runtime
    if args.device:
        from edgeprune.devices.settings import device_settings

        dev = device_settings(args.device)
        host, key = host or dev.host, key or dev.key
        runtime = runtime or dev.runtime
    if not host or host == "local":
        raise UserError("device setup needs --host USER@HOST (or a --device with an SSH host)")
    cfg = SetupConfig(
        host=host,
        runtime=runtime or "ort",
        venv=args.venv,
        base_python=args.remote_python or "python3",
        wheels=args.wheels,
        index_url=args.index_url,
        key=key,
        ssh=ssh_options_from_args(args),
    )
    result = setup_device(cfg, _progress)
    rec = result.record
    ident = rec.identity
    print(f"{rec.host}: {ident.get('machine', '?')} {ident.get('cpu', '')}".rstrip())
    print(f"  isa: {' '.join(ident.get('isa', [])) or '(none reported)'}")
    versions = ident.get("versions", {})
    print("  " + ", ".join(f"{p} {versions.get(p, '?')}" for p in rec.packages))
    print(f"  python: {rec.python} (the default --remote-python for this host from now on)")
    print(f"  record: {result.record_path}")
    return 0


def _list() -> int:
    from edgeprune.devices.hosts import list_records

    records = list_records()
    if not records:
        print("no device set up yet (edgeprune device setup --host USER@HOST)")
    for r in records:
        ident = r.identity
        print(
            f"{r.host}  {r.runtime}  {r.python}  {ident.get('machine', '')} {ident.get('cpu', '')}"
        )
    return 0
