"""One logging path: a logger per area, a progress display for long loops, ``--quiet`` and
``--log-format json``.

Human format (the default) prints ``[area] message`` on stderr and tqdm bars; JSON format
prints one object per line on stderr (``level``, ``area``, ``message``; progress events add
``event``, ``desc``, ``n`` and ``total``). ``--quiet`` hides progress and info messages;
warnings and errors still show.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

ROOT = "edgeprune"
FORMATS = ("human", "json")

_state: dict[str, Any] = {"quiet": False, "format": "human", "handler": None}


def area_of(name: str) -> str:
    """The area a logger name stands for: its last component (``edgeprune.workflows.deploy``
    -> ``deploy``)."""
    return name.rsplit(".", 1)[-1]


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time (test capture included)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if _state["format"] == "human" and _bars_open():
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)  # keeps an open bar intact
            return
        super().emit(record)


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"[{area_of(record.name)}] {record.getMessage()}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "level": record.levelname.lower(),
            "area": area_of(record.name),
            "message": record.getMessage(),
        }
        obj.update(getattr(record, "fields", None) or {})
        return json.dumps(obj, default=str)


class _VerboseSSHFilter(logging.Filter):
    """Info from the SSH transport shows only with ``--verbose`` (its own handler prints it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith("edgeprune.targets")


def configure(quiet: bool = False, fmt: str = "human") -> None:
    """Set how every edgeprune logger and progress display writes (called once per command)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}")
    _state.update(quiet=quiet, format=fmt)
    handler = _state["handler"]
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(_VerboseSSHFilter())
        logging.getLogger(ROOT).addHandler(handler)
        _state["handler"] = handler
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _HumanFormatter())


def error_line(message: str, prefix: str = "edgeprune: error: ") -> str:
    """The one stderr line a failed command ends with, in the chosen format."""
    if _state["format"] == "json":
        return json.dumps({"level": "error", "area": "cli", "message": message})
    return f"{prefix}{message}"


def is_quiet() -> bool:
    """True when ``--quiet`` asked for no progress and no info messages."""
    return bool(_state["quiet"])


def get_logger(area: str) -> logging.Logger:
    """The logger of one area (``prune``, ``bench``, ``deploy``, ``device``, ``train`` ...)."""
    if _state["handler"] is None:
        configure()
    logger = logging.getLogger(f"{ROOT}.{area}")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # info reaches our handler whatever the root level is
    return logger


_open_bars = [0]


def _bars_open() -> bool:
    return _open_bars[0] > 0


class _JsonProgress:
    """A tqdm stand-in that reports progress as JSON events (at most one a second)."""

    def __init__(self, iterable, total, desc: str, area: str, initial: int = 0) -> None:
        self.iterable, self.total, self.desc, self.n = iterable, total, desc, initial
        self._log, self._last, self._postfix = get_logger(area), 0.0, {}
        self._emit("start")

    def _emit(self, event: str) -> None:
        fields = {"event": event, "desc": self.desc, "n": self.n, "total": self.total}
        fields.update(self._postfix)
        self._log.info(f"{self.desc} {self.n}/{self.total}", extra={"fields": fields})
        self._last = time.monotonic()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()  # as tqdm does at the end of its iterable

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= 1.0:
            self._emit("progress")

    def set_postfix(self, **kw) -> None:
        self._postfix = {k: str(v) for k, v in kw.items()}

    def close(self) -> None:
        if self.iterable is not None or self.total is not None:
            self._emit("end")
        self.iterable = self.total = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _HumanProgress:
    """tqdm on stderr, counted so log lines are written above an open bar."""

    def __init__(self, bar) -> None:
        self._bar, self._open = bar, True
        _open_bars[0] += 1

    def __iter__(self) -> Iterator:
        return iter(self._bar)

    def __getattr__(self, name: str):
        return getattr(self._bar, name)

    def close(self) -> None:
        if self._open:
            self._open = False
            _open_bars[0] -= 1
        self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(
    iterable_or_total: Iterable | int,
    desc: str,
    *,
    total: int | None = None,
    enabled: bool = True,
    area: str = "progress",
    **tqdm_kw,
):
    """A progress display over an iterable, or a counter up to a total (call ``update``).

    Hidden when ``enabled`` is False or under ``--quiet``; JSON events under
    ``--log-format json``; otherwise a tqdm bar on stderr.
    """
    if _state["handler"] is None:
        configure()
    if isinstance(iterable_or_total, int):
        iterable, total = None, iterable_or_total if total is None else total
    else:
        iterable = iterable_or_total
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
    show = enabled and not _state["quiet"]
    if show and _state["format"] == "json":
        return _JsonProgress(iterable, total, desc, area, tqdm_kw.get("initial", 0))
    from tqdm.auto import tqdm

    bar = tqdm(iterable, total=total, desc=desc, disable=not show, file=sys.stderr, **tqdm_kw)
    return _HumanProgress(bar)
