"""Log lines as text (the default) or as one JSON object per line (`LOG_FORMAT=json`), for log collectors.

In JSON, the `key=value` pairs the bot writes in its messages (`job=12 guild=… phase=posted seconds=1.4`) are
also keys of the object, so a collector can filter on them without parsing the text."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_PAIR = re.compile(r"(?<![\w=])([a-z_]+)=([^\s,;]+)")
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the message's key=value pairs
    (numbers as numbers), and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for key, value in _PAIR.findall(message):
            if key not in _RESERVED and key not in entry:
                entry[key] = _number(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)
