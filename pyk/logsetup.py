"""Process-wide logging set-up, shared by `pyk serve` (the orchestrator, pyk/cli.py) and each
shard process (pyk/server/shard_main.py).

Its own module so the server does not import the command line to get it (pyk.server never
imports pyk.cli).  Not pyk/log/, which is the storage package.
"""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    """One line per event on stderr, tagged with the process id (the orchestrator and each shard)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
        stream=sys.stderr,
    )
