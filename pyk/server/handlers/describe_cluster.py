"""DescribeCluster (KIP-700): the brokers and the controller, for admin clients."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

API_KEY = ApiKey.DESCRIBE_CLUSTER
MIN_VERSION = 0
MAX_VERSION = 1

BROKERS_ENDPOINT = 1  # v1 EndpointType: 1 brokers, 2 controllers


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
                            "endpoint_type": BROKERS_ENDPOINT, "cluster_id": services.metadata.cluster_id,
                            "controller_id": services.controller_id, "cluster_authorized_operations": -2147483648}
    if request.get("include_cluster_authorized_operations"):  # Kafka: 0 unless DESCRIBE on the cluster
        body["cluster_authorized_operations"] = services.authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME) \
            if services.cluster_authorized(ctx, AclOperation.DESCRIBE) else 0
    if request.get("endpoint_type", BROKERS_ENDPOINT) != BROKERS_ENDPOINT:
        body.update(error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, error_message="only broker endpoints exist", brokers=[])
        return body
    body["brokers"] = [{"broker_id": b["node_id"], "host": b["host"], "port": b["port"], "rack": b["rack"]}
                       for b in services.brokers(ctx.connection.listener)]
    return body
