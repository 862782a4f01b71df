"""DescribeUserScramCredentials (KIP-554): which SCRAM mechanisms (and iteration counts) each user
has credentials for; never the credentials themselves."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation
from pyk.server.security.scram import MECHANISMS

API_KEY = ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    if not services.cluster_authorized(ctx, AclOperation.DESCRIBE):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": None,
                "results": []}
    stored = services.metadata.scram
    names = [u["name"] for u in request.get("users") or []]
    results = []
    for name in names or sorted(stored):
        result: dict[str, Any] = {"user": name, "error_code": ErrorCode.NONE, "error_message": None,
                                  "credential_infos": []}
        if names.count(name) > 1:
            result.update(error_code=ErrorCode.DUPLICATE_RESOURCE, error_message=f"Cannot describe SCRAM credentials "
                          f"for the same user twice in a single request: {name}")
        elif name not in stored:
            result.update(error_code=ErrorCode.RESOURCE_NOT_FOUND,
                          error_message=f"Attempt to describe a user credential that does not exist: {name}")
        else:
            result["credential_infos"] = [{"mechanism": MECHANISMS[m][0], "iterations": c["iterations"]}
                                          for m, c in sorted(stored[name].items())]
        if result not in results:
            results.append(result)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "results": results}
