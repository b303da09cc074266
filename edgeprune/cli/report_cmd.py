"""`edgeprune report`: Markdown + HTML report with plots from bench or prune run dirs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="Markdown/HTML report with plots from bench outputs or prune run dirs"
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="bench --out dirs or prune run dirs")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    return p


def run(args: argparse.Namespace) -> int:
    from edgeprune.fileio import check_writable_dir
    from edgeprune.report.compare import make_report

    check_writable_dir(args.out)  # its report files are rewritten; other files are kept
    files = make_report(list(args.runs), args.out, plots=not args.no_plots)
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return 0
