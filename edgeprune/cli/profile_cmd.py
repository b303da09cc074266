"""`edgeprune profile`: not implemented yet (lands with device profiles and latency tables)."""

from __future__ import annotations

import argparse

from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("profile", help="(not implemented yet) lands with device profiles and latency tables")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    raise UserError("'edgeprune profile' is not implemented yet; it lands with device profiles and latency tables")
