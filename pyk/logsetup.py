"""Process-wide logging set-up, shared by `pyk serve` (the orchestrator, pyk/cli.py) and each
shard process (pyk/server/shard_main.py).

Two formats (`log.format`): `text`, one line per event, and `json`, one JSON object per line
(python-json-logger) with the same fields under stable keys, for log shippers that would
otherwise parse the text with a regex:

    {"time": "2026-12-07T06:01:02.345+00:00", "level": "INFO", "process": 4179,
     "logger": "pyk.shard", "message": "started: 2 shard(s) serving, pids [4260, 4261]"}

A traceback goes into "exc_info" of the same object, so one event stays one line.

Its own module so the server does not import the command line to get it (pyk.server never
imports pyk.cli).  Not pyk/log/, which is the storage package.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

_TEXT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def setup_logging(level: str, fmt: str = "text") -> None:
    """Every event on stderr, tagged with the process id (the orchestrator and each shard), as
    text lines or JSON lines; replaces an earlier set-up (the command line sets up text logging
    before it has read the configuration)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(levelname)s %(process)d %(name)s %(message)s", timestamp="time",
                                           rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(_TEXT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
