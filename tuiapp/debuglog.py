"""The debug log: a size-bounded file under the user state dir, every line redacted.

Worker crashes, unexpected exceptions and poller trouble go here, so that the screen
stays calm and the operator can still find out what happened. httpx and httpcore log
every request URL at DEBUG/INFO (Wawp's credentials ride in the query string), so
their loggers are held at WARNING whatever the root level is.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType

from tuiapp.secrets import GLOBAL_REDACTOR

__all__ = ["RedactingFormatter", "debug_log_path", "install_crash_handler", "setup_debug_log"]

MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 2
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "aiohttp", "uvicorn.access", "asyncio")

_installed: Path | None = None


class RedactingFormatter(logging.Formatter):
    """A formatter whose every output, traceback included, passes the global redactor."""

    def format(self, record: logging.LogRecord) -> str:
        return GLOBAL_REDACTOR.redact(super().format(record))

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        # Frames and messages only: never local variables.
        return GLOBAL_REDACTOR.redact("".join(traceback.format_exception(*ei)).rstrip())


def debug_log_path() -> Path:
    """``$TUIAPP_DEBUG_LOG`` if set, else ``<user state dir>/tuiapp/debug.log``."""
    explicit = os.environ.get("TUIAPP_DEBUG_LOG")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_state_dir

    return Path(user_state_dir("tuiapp")) / "debug.log"


def setup_debug_log(path: Path | None = None, level: int = logging.INFO) -> Path | None:
    """Send tuiapp's logging to the debug log file (once per process); None if unwritable."""
    global _installed
    if _installed is not None:
        return _installed
    path = path or debug_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
        if not path.exists():
            path.touch(mode=0o600)
    except OSError:
        return None
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tuiapp")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _installed = path
    return path


def install_crash_handler() -> None:
    """An uncaught exception prints one redacted line (and goes to the debug log), no locals."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        logging.getLogger("tuiapp.crash").error("uncaught exception", exc_info=(kind, exc, tb))
        where = f" (details in {_installed})" if _installed else ""
        text = GLOBAL_REDACTOR.redact(f"{kind.__name__}: {exc}")
        print(
            f"tuiapp: internal error: {text.splitlines()[0] if text else kind.__name__}{where}",
            file=sys.stderr,
        )

    sys.excepthook = hook
