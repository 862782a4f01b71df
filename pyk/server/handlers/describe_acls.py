"""DescribeAcls: the bindings matching a filter, grouped by resource pattern (KIP-290 filters:
pattern type ANY or MATCH).  Needs DESCRIBE on the cluster.

Without an authorizer pyk answers as a Kafka broker without one does (SECURITY_DISABLED), which
clients read as "no ACLs to sync" (MirrorMaker 2's topic ACL sync, `kafka-acls --list`) rather
than as an unsupported API."""

from __future__ import annotations

import itertools
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)

API_KEY = ApiKey.DESCRIBE_ACLS
MIN_VERSION = 1
MAX_VERSION = 3

NO_AUTHORIZER = "No Authorizer is configured."  # Kafka's own message, which tools print


def binding_filter(f: dict[str, Any]) -> AclBindingFilter:
    """A DescribeAcls / DeleteAcls filter as the request carries it (unknown codes: UNKNOWN)."""
    def code(enum: Any, value: int) -> Any:
        return enum(value) if value in enum._value2member_map_ else enum.UNKNOWN

    return AclBindingFilter(code(ResourceType, f["resource_type_filter"]), f["resource_name_filter"],
                            code(PatternType, f["pattern_type_filter"]), f["principal_filter"], f["host_filter"],
                            code(AclOperation, f["operation"]), code(AclPermissionType, f["permission_type"]))


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    def answer(code: ErrorCode, message: str | None, resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "resources": resources}

    if services.authorizer is None:
        return answer(ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER, [])
    if not services.cluster_authorized(ctx, AclOperation.DESCRIBE):
        return answer(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None, [])
    acl_filter = binding_filter(request)
    problem = acl_filter.invalid()
    if problem is not None:
        return answer(ErrorCode.INVALID_REQUEST, problem, [])
    found = services.authorizer.describe(acl_filter)

    def pattern(a: AclBinding) -> tuple[int, str, int]:
        return a.resource_type, a.name, a.pattern_type

    resources = [{"resource_type": rtype, "resource_name": name, "pattern_type": ptype,
                  "acls": [{"principal": a.principal, "host": a.host, "operation": a.operation,
                            "permission_type": a.permission} for a in acls]}
                 for (rtype, name, ptype), acls in itertools.groupby(found, key=pattern)]
    return answer(ErrorCode.NONE, None, resources)
