"""`edgeprune bench`: not implemented yet (lands with the comparison harness)."""

from __future__ import annotations

import argparse

from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="(not implemented yet) lands with the comparison harness")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    raise UserError(
        "'edgeprune bench' is not implemented yet; it lands with the comparison harness"
    )
