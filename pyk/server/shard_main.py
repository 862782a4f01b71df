"""Entry point of one shard process: `python -m pyk.server.shard_main FD`.

Started only by the orchestrator (pyk.server.shard), which passes the shard's end of the
control socket pair as FD and sends the configuration, the shard's index and the first
metadata snapshot over it.  The shard pins itself to one core, then runs a Broker for the
partitions the snapshot places on it.  It stops when the orchestrator's end of the channel
closes: the orchestrator's way of stopping it (after a cluster host's controlled shutdown), and
what an orphaned shard sees.  SIGTERM and SIGINT are ignored: sent to the whole process group
(Ctrl-C, `pyk cluster down`, a service manager), they reach the shards too, which must keep
serving until the orchestrator has moved their leaderships away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import socket
import sys

from pyk.config import ConfigError, ServerConfig
from pyk.logsetup import setup_logging
from pyk.server.control import ControlClient, read_message

log = logging.getLogger("pyk.shard")


def _raise_fd_limit() -> None:
    """Partitions hold open files (about three each); a shard with thousands of partitions needs
    more than the common 1024 soft limit, so take the hard limit, as Kafka's docs advise."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _pin(index: int) -> None:
    cores = sorted(os.sched_getaffinity(0))
    core = cores[index % len(cores)]
    os.sched_setaffinity(0, {core})
    log.info("shard %d pinned to core %d", index, core)


async def _run(fd: int) -> int:
    from pyk.server.broker import Broker

    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    kind, raw, index, count = await read_message(reader)
    assert kind == "init"
    config = ServerConfig(raw)
    _pin(index)
    _raise_fd_limit()
    broker = Broker(config, index, count)
    control = ControlClient(reader, writer, broker.apply_snapshot, broker.metrics_snapshot)
    broker.control = control
    control.on_request = broker.on_control_request
    channel = asyncio.ensure_future(control.run())

    def channel_done(task: asyncio.Future[None]) -> None:
        """The orchestrator went away (EOF), or applying what it sent failed: stop, saying which."""
        failure = None if task.cancelled() else task.exception()
        if failure is not None and not isinstance(failure, asyncio.IncompleteReadError | ConnectionError):
            log.error("shard %d: the control channel failed; stopping", index, exc_info=failure)
        broker.request_stop()

    channel.add_done_callback(channel_done)
    try:
        await broker.start()
    except (OSError, ConfigError) as exc:  # a port in use; a TLS file gone since `pyk serve` checked it
        log.error("shard %d cannot start: %s", index, exc)
        return 1
    await broker.serve_forever()
    await broker.stop()
    channel.cancel()
    return 0


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the orchestrator stops this shard (module docstring)
    setup_logging(os.environ.get("PYK_LOG_LEVEL", "INFO"), os.environ.get("PYK_LOG_FORMAT", "text"))
    import uvloop

    return uvloop.run(_run(int(sys.argv[1])))


if __name__ == "__main__":
    raise SystemExit(main())
