"""Entry point of the ``edgeprune`` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgeprune.errors import UserError
from edgeprune.log import FORMATS, configure, error_line

# Sub-command name -> module under edgeprune.cli. Each module has add_parser(sub) and run(args).
COMMANDS: dict[str, str] = {
    "eval": "edgeprune.cli.eval_cmd",
    "profile": "edgeprune.cli.profile_cmd",
    "prune": "edgeprune.cli.prune_cmd",
    "deploy": "edgeprune.cli.deploy_cmd",
    "bench": "edgeprune.cli.bench_cmd",
    "report": "edgeprune.cli.report_cmd",
    "device": "edgeprune.cli.device_cmd",
}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one sentence and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"edgeprune: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    from edgeprune import __version__

    parser = _Parser(
        prog="edgeprune",
        description="Hardware-aware pruning and deployment of CNNs for edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edgeprune {__version__}")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars and no info messages on stderr"
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="human",
        help="stderr as '[area] message' lines (human) or one JSON object per line (json)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for _name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sp = module.add_parser(sub)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one sentence and return a non-zero code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(quiet=args.quiet, fmt=args.log_format)
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(error_line(str(err)), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        text = (
            "interrupted; completed work was kept (prune continues with --resume, "
            "bench and profile by running the same command again)"
        )
        print(error_line(text, prefix="edgeprune: "), file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
