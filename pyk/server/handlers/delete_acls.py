"""DeleteAcls: removes the bindings matching each filter (pattern type ANY or MATCH as in
DescribeAcls) and answers, per filter, the bindings it removed.  Needs ALTER on the cluster.
SECURITY_DISABLED without an authorizer (see describe_acls)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.handlers.describe_acls import NO_AUTHORIZER, binding_filter
from pyk.server.security.authorizer import AclBinding, AclOperation

API_KEY = ApiKey.DELETE_ACLS
MIN_VERSION = 1
MAX_VERSION = 3


def _matching(a: AclBinding) -> dict[str, Any]:
    return {"error_code": ErrorCode.NONE, "error_message": None, "resource_type": a.resource_type,
            "resource_name": a.name, "pattern_type": a.pattern_type, "principal": a.principal, "host": a.host,
            "operation": a.operation, "permission_type": a.permission}


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    filters = request["filters"]

    def failed(code: ErrorCode, message: str | None) -> dict[str, Any]:
        return {"error_code": code, "error_message": message, "matching_acls": []}

    if services.authorizer is None:
        return {"throttle_time_ms": 0, "filter_results": [failed(ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER)
                                                          for _ in filters]}
    if not services.cluster_authorized(ctx, AclOperation.ALTER):
        return {"throttle_time_ms": 0, "filter_results": [failed(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None)
                                                          for _ in filters]}
    results: list[dict[str, Any]] = []
    doomed: set[AclBinding] = set()
    for f in filters:
        acl_filter = binding_filter(f)
        problem = acl_filter.invalid()
        if problem is not None:
            results.append(failed(ErrorCode.INVALID_REQUEST, problem))
            continue
        matches = services.authorizer.describe(acl_filter)
        doomed.update(matches)
        results.append({"error_code": ErrorCode.NONE, "error_message": None,
                        "matching_acls": [_matching(a) for a in matches]})
    if doomed:
        try:
            await services.admin.alter_acls([a.to_doc() for a in sorted(doomed)], [])
        except Exception as exc:
            code, message = error_for(exc, "deleting ACLs")
            results = [r if r["error_code"] != ErrorCode.NONE else failed(code, message) for r in results]
    return {"throttle_time_ms": 0, "filter_results": results}
