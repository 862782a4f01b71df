"""AlterUserScramCredentials (KIP-554): create, replace and delete SCRAM credentials.

The client sends the salt, the iteration count and the salted password; what is stored is
derived from them (pyk.server.security.scram.ScramCredential).  Checks and error codes are
Kafka's: an unknown mechanism UNSUPPORTED_SASL_MECHANISM, an empty name or an iteration count
outside [4096, 16384] UNACCEPTABLE_CREDENTIAL, a user altered twice for one mechanism
DUPLICATE_RESOURCE, deleting what does not exist RESOURCE_NOT_FOUND.  One result per user; the
valid changes of a request are applied together.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation
from pyk.server.security.scram import BY_TYPE, MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential

API_KEY = ApiKey.ALTER_USER_SCRAM_CREDENTIALS
MIN_VERSION = 0
MAX_VERSION = 0


def _check(change: dict[str, Any], twice: Counter[tuple[str, int]], stored: dict[str, Any],
           deletion: bool) -> tuple[ErrorCode, str | None] | None:
    name, mechanism = change["name"], BY_TYPE.get(change["mechanism"])
    if not name:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism is None:
        return ErrorCode.UNSUPPORTED_SASL_MECHANISM, f"Unknown SCRAM mechanism type {change['mechanism']}"
    if twice[(name, change["mechanism"])] > 1:
        return ErrorCode.DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request"
    if deletion and mechanism not in stored.get(name, {}):
        return ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"
    if not deletion and change["iterations"] < MIN_ITERATIONS:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, f"Too few iterations: at least {MIN_ITERATIONS}"
    if not deletion and change["iterations"] > MAX_ITERATIONS:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, f"Too many iterations: at most {MAX_ITERATIONS}"
    return None


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    stored = services.metadata.scram
    changes = [(c, True) for c in request["deletions"]] + [(c, False) for c in request["upsertions"]]
    if not services.cluster_authorized(ctx, AclOperation.ALTER):
        return {"throttle_time_ms": 0, "results": [
            {"user": u, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": None}
            for u in dict.fromkeys(c["name"] for c, _ in changes)]}
    twice = Counter((c["name"], c["mechanism"]) for c, _ in changes)
    errors: dict[str, tuple[ErrorCode, str | None]] = {}
    for change, deletion in changes:
        problem = _check(change, twice, stored, deletion)
        if problem is not None:
            errors.setdefault(change["name"], problem)
    deletions = [(c["name"], BY_TYPE[c["mechanism"]]) for c in request["deletions"] if c["name"] not in errors]
    upsertions = [(c["name"], BY_TYPE[c["mechanism"]],
                   ScramCredential.from_salted_password(BY_TYPE[c["mechanism"]], bytes(c["salt"]),
                                                        bytes(c["salted_password"]), c["iterations"]).to_doc())
                  for c in request["upsertions"] if c["name"] not in errors]
    if deletions or upsertions:
        try:
            await services.admin.alter_scram(deletions, upsertions)
        except Exception as exc:
            failure = error_for(exc, "storing SCRAM credentials")
            for name, _ in deletions:
                errors.setdefault(name, failure)
            for name, _, _ in upsertions:
                errors.setdefault(name, failure)
    users = list(dict.fromkeys(c["name"] for c, _ in changes))
    results = [{"user": u, "error_code": errors.get(u, (ErrorCode.NONE, None))[0],
                "error_message": errors.get(u, (ErrorCode.NONE, None))[1]} for u in users]
    return {"throttle_time_ms": 0, "results": results}
