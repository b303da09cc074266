"""`edgeprune eval`: not implemented yet (lands with device evals and latency tables)."""

from __future__ import annotations

import argparse

from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="(not implemented yet) lands with device evals and latency tables")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    raise UserError("'edgeprune eval' is not implemented yet; it lands with device evals and latency tables")
