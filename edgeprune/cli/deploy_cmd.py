"""`edgeprune deploy`: not implemented yet (lands with the deploy stage)."""

from __future__ import annotations

import argparse

from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("deploy", help="(not implemented yet) lands with the deploy stage")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    raise UserError("'edgeprune deploy' is not implemented yet; it lands with the deploy stage")
