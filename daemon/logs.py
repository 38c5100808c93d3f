"""The daemon's logs: JSON lines (one object per line: ts, level, logger, msg, plus extra fields)
or text, on stderr (journald stores them under systemd)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line; fields passed with ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, sort_keys=False)


def configure_logging(log_format: str = "json", stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """Route the ``snapseal`` loggers to ``stream`` (stderr) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("snapseal")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler
