"""Request dispatch: frame -> header -> handler -> encoded response.

Each API is served by one module in `pyk.server.handlers` declaring API_KEY, MIN_VERSION,
MAX_VERSION and `handle(ctx, services, request)` (pyk.server.context); ApiVersions is answered
from this same table, so the broker advertises exactly what it implements.

A handler returns the response body (a dict), None when no response is due (Produce with
acks=0), or an awaitable of either (long-polling Fetch).  A handler on a hot path may decode its
request itself (`decode_request`, a Cython scan) and return the encoded response parts (a list).  Errors, by tier: a KafkaError inside a
handler is turned into error codes by the handler itself; a ProtocolViolation (garbage, unknown
API key, unsupported version other than ApiVersions') propagates to the connection, which closes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import monotonic_ns, time_ns
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pyk import protocol
from pyk._native import InflightResponses, RequestStats
from pyk.errors import ErrorCode, ProtocolViolation
from pyk.protocol.apis import ApiKey
from pyk.protocol.header import RequestHeader
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import (
    add_offsets_to_txn,
    add_partitions_to_txn,
    alter_client_quotas,
    alter_configs,
    alter_partition_reassignments,
    alter_user_scram_credentials,
    api_versions,
    consumer_group_describe,
    consumer_group_heartbeat,
    create_acls,
    create_partitions,
    create_topics,
    delete_acls,
    delete_groups,
    delete_records,
    delete_topics,
    describe_acls,
    describe_client_quotas,
    describe_cluster,
    describe_configs,
    describe_groups,
    describe_log_dirs,
    describe_producers,
    describe_topic_partitions,
    describe_transactions,
    describe_user_scram_credentials,
    elect_leaders,
    end_txn,
    fetch,
    find_coordinator,
    heartbeat,
    incremental_alter_configs,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    list_partition_reassignments,
    list_transactions,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    offset_for_leader_epoch,
    produce,
    sasl_authenticate,
    sasl_handshake,
    sync_group,
    txn_offset_commit,
    write_txn_markers,
)
from pyk.server.metrics import count_errors
from pyk.server.quotas import QuotaType

if TYPE_CHECKING:
    from pyk.server.connection import Connection, Frame

log = logging.getLogger("pyk.server")

HANDLERS: dict[int, ModuleType] = {
    m.API_KEY: m
    for m in (
        produce,
        fetch,
        list_offsets,
        metadata,
        describe_topic_partitions,
        api_versions,
        create_topics,
        delete_topics,
        create_partitions,
        elect_leaders,
        alter_partition_reassignments,
        list_partition_reassignments,
        describe_configs,
        alter_configs,
        incremental_alter_configs,
        describe_cluster,
        describe_log_dirs,
        delete_records,
        init_producer_id,
        offset_for_leader_epoch,
        # ACLs (pyk.server.security.authorizer; without one SECURITY_DISABLED, as Kafka)
        describe_acls,
        create_acls,
        delete_acls,
        # consumer groups
        find_coordinator,
        join_group,
        sync_group,
        heartbeat,
        leave_group,
        offset_commit,
        offset_fetch,
        list_groups,
        describe_groups,
        delete_groups,
        offset_delete,
        consumer_group_heartbeat,
        consumer_group_describe,
        # transactions
        add_partitions_to_txn,
        add_offsets_to_txn,
        end_txn,
        write_txn_markers,
        txn_offset_commit,
        describe_producers,
        describe_transactions,
        list_transactions,
        # security (a SASL listener answers the first two itself until authenticated: pyk.server.security)
        sasl_handshake,
        sasl_authenticate,
        describe_user_scram_credentials,
        alter_user_scram_credentials,
        # client quotas
        describe_client_quotas,
        alter_client_quotas,
    )
}


# Handlers with a request decoder of their own (`decode_request(frame, offset, version)`, a
# native scan on the hot paths) instead of the generic codec; their handle() returns the
# encoded response parts.
DECODERS: dict[int, Callable[[memoryview, int, int], Any]] = {
    key: m.decode_request for key, m in HANDLERS.items() if hasattr(m, "decode_request")
}


# Not counted against request_percentage (Kafka exempts what a client needs to connect).
_QUOTA_EXEMPT = frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE})
_PERCENT_PER_NS = 100 / 1e9  # handling time -> percent-seconds of one thread (request_percentage)


def supported_versions() -> list[tuple[int, int, int]]:
    """(api_key, min, max) for every implemented API, sorted by key: the ApiVersions answer."""
    return sorted((key, m.MIN_VERSION, m.MAX_VERSION) for key, m in HANDLERS.items())


class Dispatcher:
    """Turns request frames into response parts for one broker process.

    Metrics: every answered request is timed into `stats` (Kafka's RequestMetrics; the frame's
    read time is the connection's `read_ns`; its response's send time is recorded by the
    connection's sender through `conn.responses`); the error codes of the bodies it encodes (the
    generic path) are counted in `errors`, Produce and Fetch partition errors by the
    ReplicaManager.
    """

    def __init__(self, services: ShardServices) -> None:
        self.services = services
        self.quotas = services.quotas
        self.stats = RequestStats()
        self.errors: dict[tuple[int, int], int] = {}  # (api key, error code) -> count

    def on_frame(self, conn: Connection, frame: Frame) -> Any:
        view = memoryview(frame)
        header, offset = protocol.decode_request_header(view)
        conn.client_id = header.client_id
        handler = HANDLERS.get(header.api_key)
        if handler is None:
            raise ProtocolViolation(f"api key {header.api_key} is not implemented by this broker")
        version = header.api_version
        if not handler.MIN_VERSION <= version <= handler.MAX_VERSION:
            if header.api_key == ApiKey.API_VERSIONS:
                # KIP-511: answer a too-new ApiVersions with v0 and our ranges, so the client
                # retries with a version we speak.
                body = api_versions.response(self.services.supported_apis, ErrorCode.UNSUPPORTED_VERSION)
                self.stats.done(header.api_key, conn.read_ns, conn.responses)
                return protocol.encode_response(ApiKey.API_VERSIONS, 0, header.correlation_id, body)
            raise ProtocolViolation(
                f"{ApiKey(header.api_key).name} v{version} requested; supported "
                f"v{handler.MIN_VERSION}-v{handler.MAX_VERSION}"
            )
        decode = DECODERS.get(header.api_key)
        if decode is None:
            request = protocol.decode_request(header.api_key, version, view, offset)
        else:
            request = decode(view, offset, version)
        ctx = RequestContext(header, conn, conn.client_address, conn.principal)
        if self.quotas.active and header.api_key not in _QUOTA_EXEMPT:
            result = self._handle_with_quotas(ctx, handler, request, len(frame))
        else:
            result = handler.handle(ctx, self.services, request)
        if result is None or isinstance(result, list):
            self.stats.done(header.api_key, conn.read_ns, conn.responses if result else None)
            return result  # no answer, or one the handler encoded itself
        if isinstance(result, dict):
            count_errors(self.errors, header.api_key, result)
            self.stats.done(header.api_key, conn.read_ns, conn.responses)
            return protocol.encode_response(header.api_key, version, header.correlation_id, result)
        started, returned = self.stats.park(conn.read_ns)  # now, not when the coroutine first runs
        return self._finish(header, result, conn.responses, conn.read_ns, started, returned)

    def _handle_with_quotas(self, ctx: RequestContext, handler: ModuleType, request: Any, size: int) -> Any:
        """handler.handle under the client's quotas (pyk.server.quotas): the throttle time of its
        request rate so far and, for Produce, of its bytes goes into the answer (Fetch adds its
        own); the handling time is recorded; the connection mutes once the answer is out."""
        quotas, header = self.quotas, ctx.header
        if header.api_key == ApiKey.FETCH and request.get("replica_id", -1) >= 0:
            return handler.handle(ctx, self.services, request)  # replication is exempt, as in Kafka
        principal, client_id = ctx.principal, ctx.client_id
        now_ms = time_ns() // 1_000_000
        if not quotas.applies(principal, client_id, now_ms):
            return handler.handle(ctx, self.services, request)
        throttle = quotas.record(QuotaType.REQUEST, principal, client_id, 0, now_ms)
        if header.api_key == ApiKey.PRODUCE:
            throttle = max(throttle, quotas.record(QuotaType.PRODUCE, principal, client_id, size, now_ms))
        ctx.throttle_time_ms = throttle
        started = monotonic_ns()
        result = handler.handle(ctx, self.services, request)
        quotas.record(QuotaType.REQUEST, principal, client_id, (monotonic_ns() - started) * _PERCENT_PER_NS, now_ms,
                      check=False)
        if result is None or isinstance(result, (list, dict)):
            return _throttled(ctx, result)
        return self._throttle_after(ctx, result)

    @staticmethod
    async def _throttle_after(ctx: RequestContext, pending: Awaitable[dict[str, Any] | list[Any] | None]
                              ) -> dict[str, Any] | list[Any] | None:
        return _throttled(ctx, await pending)

    async def _finish(self, header: RequestHeader, pending: Awaitable[dict[str, Any] | list[Any] | None],
                      responses: InflightResponses, received: int, started: int, returned: int) -> list[Any] | None:
        body = None
        try:
            body = await pending
        finally:
            self.stats.parked(header.api_key, received, started, returned, responses if body else None)
        if body is None or isinstance(body, list):
            return body
        count_errors(self.errors, header.api_key, body)
        return protocol.encode_response(header.api_key, header.api_version, header.correlation_id, body)


def _throttled(ctx: RequestContext, body: dict[str, Any] | list[Any] | None) -> dict[str, Any] | list[Any] | None:
    """Puts the request's throttle time into a decoded answer and mutes the connection for it."""
    throttle = ctx.throttle_time_ms
    if throttle:
        if isinstance(body, dict):  # a version without the field ignores it
            body["throttle_time_ms"] = max(body.get("throttle_time_ms", 0), throttle)
        ctx.connection.mute(throttle)
    return body
