"""User-facing errors: one clear sentence, non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error the user caused and can fix (bad flag, missing file, infeasible budget...).

    The CLI prints ``str(err)`` as one sentence and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InfeasibleBudget(UserError):
    """No model the method can make meets the budget (a result, not a failure to run)."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency is missing; names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        UserError.__init__(
            self,
            f"{package} is not installed; install it with: pip install 'edgeprune[{extra}]'",
        )


def require(module: str, extra: str):
    """Import an optional heavy module or raise MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised when extras are absent
        raise MissingExtraError(module.split(".")[0], extra) from exc
