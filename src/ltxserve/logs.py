"""Logging for every ltxserve process: text or JSON lines, with the ids that tie them.

Three context variables carry what an operator searches logs by: the request id
(set by the API's RequestContext middleware, echoed as ``x-request-id``), the API
key id (set once a request's key is checked) and the job id (set by the API on
submit, by the worker for the job it holds, by the runner for the job it renders).
``ContextFilter`` copies them onto every record, so any ``log.info`` anywhere in
a request or a job carries them without passing them around: asyncio tasks and
the thread pool copy the context of the request that started them.

``LTXSERVE_LOG_FORMAT=json`` (``Settings.log_format``) makes each record one JSON
object per line (``ts``, ``level``, ``logger``, ``message``, the ids that are set,
``exc`` for a traceback); ``text`` (the default) keeps the classic line and adds
the ids that are set in brackets. ``serve`` hands the format to its workers and
the workers to their runners through the environment.
"""

from __future__ import annotations

import contextvars
import logging
import os
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ltxserve_request_id", default=None
)
key_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ltxserve_key_id", default=None
)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ltxserve_job_id", default=None
)

FORMATS = ("text", "json")
CONTEXT_FIELDS = ("request_id", "key_id", "job_id")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s%(context)s"


class ContextFilter(logging.Filter):
    """Stamps the ids of the current request/job on a record (None when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.key_id = key_id_var.get()
        record.job_id = job_id_var.get()
        ids = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS]
        set_ids = [i for i in ids if not i.endswith("=None")]
        record.context = f" [{' '.join(set_ids)}]" if set_ids else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; only the ids that are set, so lines stay short."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def check_format(name: str | None) -> str:
    """The format's canonical name; ValueError names the choices."""
    fmt = (name or "text").strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {name!r}; use text or json")
    return fmt


def configure(level: str, fmt: str | None = None, *, text_format: str = TEXT_FORMAT) -> None:
    """Install one stderr handler on the root logger with the ids filter.

    Replaces handlers a previous call (or ``logging.basicConfig``) installed, so a
    process may call it again once it knows its settings. ``fmt`` defaults to
    ``$LTXSERVE_LOG_FORMAT`` (how workers and runners inherit it).
    """
    chosen = check_format(fmt if fmt is not None else os.environ.get("LTXSERVE_LOG_FORMAT"))
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(text_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
