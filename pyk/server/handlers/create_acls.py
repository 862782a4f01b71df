"""CreateAcls: adds bindings to the cluster's ACLs (stored with the metadata, so every shard and,
in a cluster, every host enforces them once the answer comes).  Needs ALTER on the cluster;
a binding Kafka would refuse (an operation the resource type does not have, a pattern type other
than LITERAL/PREFIXED, ...) gets INVALID_REQUEST, the others are created together.
SECURITY_DISABLED without an authorizer (see describe_acls)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.handlers.describe_acls import NO_AUTHORIZER
from pyk.server.security.authorizer import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)

API_KEY = ApiKey.CREATE_ACLS
MIN_VERSION = 1
MAX_VERSION = 3


def _binding(c: dict[str, Any]) -> AclBinding | str:
    """The creation as a binding, or why it is invalid."""
    try:
        acl = AclBinding(ResourceType(c["resource_type"]), c["resource_name"], PatternType(c["resource_pattern_type"]),
                         c["principal"], c["host"], AclOperation(c["operation"]),
                         AclPermissionType(c["permission_type"]))
    except ValueError as exc:
        return f"Invalid ACL creation: {exc}"
    return acl.invalid() or acl


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    creations = request["creations"]
    if services.authorizer is None:
        failed = (ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER)
        return {"throttle_time_ms": 0, "results": [{"error_code": failed[0], "error_message": failed[1]}
                                                   for _ in creations]}
    results: list[tuple[ErrorCode, str | None]] = [(ErrorCode.NONE, None)] * len(creations)
    if not services.cluster_authorized(ctx, AclOperation.ALTER):
        results = [(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None)] * len(creations)
    else:
        bindings = [_binding(c) for c in creations]
        valid = [b for b in bindings if isinstance(b, AclBinding)]
        failure: tuple[ErrorCode, str | None] | None = None
        if valid:
            try:
                await services.admin.alter_acls([], [b.to_doc() for b in valid])
            except Exception as exc:
                failure = error_for(exc, "creating ACLs")
        results = [(ErrorCode.INVALID_REQUEST, b) if isinstance(b, str) else failure or (ErrorCode.NONE, None)
                   for b in bindings]
    return {"throttle_time_ms": 0, "results": [{"error_code": code, "error_message": message}
                                               for code, message in results]}
