"""One module per Kafka API, named like the API in snake_case.

Each declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(broker, header, request)` returning
the response body (a dict), None (no response), or an awaitable of either.  Handlers validate,
call the log or the metadata store, and turn failures into per-partition error codes with
`error_for` below; they never touch sockets.
"""

from __future__ import annotations

import logging

from pyk.errors import ErrorCode, KafkaError

log = logging.getLogger("pyk.server")


def error_for(exc: BaseException, where: str) -> tuple[ErrorCode, str | None]:
    """A Kafka error code and message for a failure while serving `where` (tier a or c).

    A KafkaError is expected and carries its code; anything else is a bug: it is logged with
    its traceback and reported as UNKNOWN_SERVER_ERROR for that partition only.
    """
    if isinstance(exc, KafkaError):
        return exc.code, exc.message or None
    log.error("unexpected error serving %s", where, exc_info=exc)
    return ErrorCode.UNKNOWN_SERVER_ERROR, f"{type(exc).__name__}: {exc}"


def check_isolation_level(isolation_level: int) -> None:
    """Fetch and ListOffsets know Kafka's two isolation levels (0 read_uncommitted, 1
    read_committed); anything else is a bad request, reported per partition so that versions
    without a top-level error code carry it too."""
    if isolation_level not in (0, 1):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"isolation_level must be 0 or 1, found {isolation_level}")


def check_leader_epoch(current: int, leader_epoch: int) -> None:
    """KIP-320 fencing: a client that names a leader epoch must name the current one."""
    if current < 0:
        return
    if current < leader_epoch:
        raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH, f"client epoch {current} < leader epoch {leader_epoch}")
    if current > leader_epoch:
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH, f"client epoch {current} > leader epoch {leader_epoch}")
