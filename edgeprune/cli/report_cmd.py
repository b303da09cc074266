"""`edgeprune report`: not implemented yet (lands with the comparison harness and reports)."""

from __future__ import annotations

import argparse

from edgeprune.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="(not implemented yet) lands with the comparison harness and reports"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    raise UserError(
        "'edgeprune report' is not implemented yet; it lands with the comparison harness and reports"
    )
