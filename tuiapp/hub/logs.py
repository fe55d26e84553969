"""Structured logs for the hub: one JSON object per line on stderr, every string redacted.

Each line has ``time`` (UTC ISO 8601), ``level``, ``logger`` and ``msg``, then the record's
extra fields (``extra={...}``: operator, client, path, status, instance, ...). Every
string value, and the line as a whole, passes the global redactor, so a provider token,
an operator token or a QR value registered there never reaches the log. Tracebacks are
frames and messages only, never local variables.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import TextIO

from tuiapp.secrets import GLOBAL_REDACTOR

__all__ = ["JsonFormatter", "setup_json_logging"]

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of msg with ANSI colours
}
HUB_LOGGERS = ("tuiapp", "uvicorn", "uvicorn.error")


def _clean(value: object) -> object:
    if isinstance(value, str):
        return GLOBAL_REDACTOR.redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return GLOBAL_REDACTOR.redact(str(value))


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in data:
                data[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            kind, exc, tb = record.exc_info
            data["error"] = f"{kind.__name__ if kind else 'Exception'}: {exc}"
            data["traceback"] = "".join(traceback.format_exception(kind, exc, tb)).rstrip()
        text = json.dumps(_clean(data), ensure_ascii=False, default=str)
        return GLOBAL_REDACTOR.redact(text)


def setup_json_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the hub's and uvicorn's logs to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in HUB_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    for name in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
