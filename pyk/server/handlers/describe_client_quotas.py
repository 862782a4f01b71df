"""DescribeClientQuotas (KIP-546): the stored client quotas of the entities a filter matches
(pyk.server.quotas.describe); a bad filter fails the whole request with INVALID_REQUEST, as
Kafka answers.  With an authorizer it needs DESCRIBE_CONFIGS on the cluster (ALTER_CONFIGS
implies it); without, the whole request fails with CLUSTER_AUTHORIZATION_FAILED (Kafka's
handleDescribeClientQuotasRequest)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.quotas import describe
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.DESCRIBE_CLIENT_QUOTAS
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    components = [(c["entity_type"], c["match_type"], c["match"]) for c in request["components"]]
    try:
        if not services.cluster_authorized(ctx, AclOperation.DESCRIBE_CONFIGS):
            raise KafkaError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                             f"{ctx.principal} may not DESCRIBE_CONFIGS on the cluster")
        found = describe(services.metadata.client_quotas, components, request["strict"])
    except KafkaError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": exc.message, "entries": None}
    entries = [{"entity": [{"entity_type": kind, "entity_name": name} for kind, name in entity.items()],
                "values": [{"key": key, "value": value} for key, value in sorted(values.items())]}
               for entity, values in found]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": "", "entries": entries}  # Kafka's ""
