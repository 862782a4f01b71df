"""ACL authorization with Kafka's model (KIP-11, prefixed patterns KIP-290, AclAuthorizer).

An ACL binding is a resource pattern (resource type, name, LITERAL or PREFIXED) and an access
control entry (principal, host, operation, ALLOW or DENY).  `Authorizer.authorize` decides as
Kafka's AclAuthorizer does:

1. a principal of `super.users` may do anything;
2. the bindings that apply to the resource are the LITERAL ones of its exact name or of the
   wildcard name `*`, and the PREFIXED ones whose name starts the resource's name;
3. none at all: `allow.everyone.if.no.acl.found` decides (default false: denied);
4. a DENY matching the principal (or `User:*`), the host (or `*`) and the operation (or ALL)
   denies, whatever allows it;
5. else an ALLOW matching the same way allows, where READ, WRITE, DELETE and ALTER imply
   DESCRIBE, and ALTER_CONFIGS implies DESCRIBE_CONFIGS.

Decisions are cached per (principal, host, operation, resource type, name), and the cache is
dropped whenever the bindings change (`update`), so a handler asking again for the same
principal pays one dict lookup.  Denials are logged on `pyk.audit` (Kafka's
kafka.authorizer.logger) unless the caller only filters (Metadata hiding topics, ListGroups).

Owned by one shard's event loop, as everything a handler calls; the bindings arrive with the
metadata snapshot (the host's metadata store, or ZooKeeper's /kafka-acl in a cluster).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

from pyk.errors import ErrorCode
from pyk.server.security.settings import AUDIT

WILDCARD = "*"  # a LITERAL resource name or a host matching every one
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"  # the one CLUSTER resource's name (Kafka's)
_CACHE_LIMIT = 100_000  # decisions kept before the cache starts over (a bound against many principals)


class ResourceType(IntEnum):
    """Kafka's ResourceType codes (ANY only in filters)."""

    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    """Kafka's PatternType codes: bindings are LITERAL or PREFIXED; filters may also say ANY
    (either, by name) or MATCH (every binding that applies to the named resource)."""

    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    """Kafka's AclOperation codes (ANY only in filters)."""

    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15  # KIP-939 (Kafka 4.0+)


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# The error a denial gets, by resource type (as KafkaApis answers).
DENIED = {
    ResourceType.TOPIC: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
    ResourceType.GROUP: ErrorCode.GROUP_AUTHORIZATION_FAILED,
    ResourceType.CLUSTER: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
    ResourceType.TRANSACTIONAL_ID: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}

# Operations whose ALLOW also allows the key (Kafka's AclEntry.supportedOperations implications).
_IMPLIED_BY = {
    AclOperation.DESCRIBE: frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE,
                                      AclOperation.DELETE, AclOperation.ALTER, AclOperation.ALL}),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
                                              AclOperation.ALL}),
}

# The operations of each resource type (Kafka's AclEntry.supportedOperations): what CreateAcls
# accepts (with ALL; others are INVALID_REQUEST, as in Kafka) and what "authorized operations"
# bit fields are made of.
SUPPORTED_OPERATIONS = {
    ResourceType.TOPIC: (AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                         AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
                         AclOperation.ALTER_CONFIGS),
    ResourceType.GROUP: (AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE),
    ResourceType.CLUSTER: (AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
                           AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.TWO_PHASE_COMMIT),
}


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """One ACL: a resource pattern and an access control entry (Kafka's AclBinding)."""

    resource_type: ResourceType
    name: str
    pattern_type: PatternType  # LITERAL or PREFIXED
    principal: str  # "User:alice", or "User:*"
    host: str  # an IP address, or "*"
    operation: AclOperation
    permission: AclPermissionType  # ALLOW or DENY

    def to_doc(self) -> list[object]:
        """The compact form the metadata store and its snapshots carry."""
        return [int(self.resource_type), self.name, int(self.pattern_type), self.principal, self.host,
                int(self.operation), int(self.permission)]

    @classmethod
    def from_doc(cls, doc: list[object]) -> AclBinding:
        rtype, name, ptype, principal, host, op, perm = doc
        return cls(ResourceType(cast(int, rtype)), str(name), PatternType(cast(int, ptype)), str(principal), str(host),
                   AclOperation(cast(int, op)), AclPermissionType(cast(int, perm)))

    def invalid(self) -> str | None:
        """Why CreateAcls must refuse this binding (Kafka's checks), or None."""
        if self.resource_type not in SUPPORTED_OPERATIONS:
            return f"Invalid resource type {self.resource_type.name}"
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            return f"Invalid pattern type {self.pattern_type.name}: a binding is LITERAL or PREFIXED"
        if self.permission not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
            return f"Invalid permission type {self.permission.name}"
        if self.operation not in SUPPORTED_OPERATIONS[self.resource_type] and self.operation != AclOperation.ALL:
            return f"{self.operation.name} is not a valid operation for a {self.resource_type.name} resource"
        if not self.name:
            return "The resource name must not be empty"
        if self.resource_type == ResourceType.CLUSTER and self.name != CLUSTER_NAME:
            return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        if self.pattern_type == PatternType.PREFIXED and self.name == WILDCARD:
            return "A PREFIXED pattern of '*' is not allowed: use LITERAL '*'"
        kind, sep, _ = self.principal.partition(":")
        if not kind or not sep:
            return f"Could not parse principal from `{self.principal}` (no colon is present separating the " \
                   "principal type from the principal name)"
        return None


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """DescribeAcls / DeleteAcls filter (Kafka's AclBindingFilter): None or ANY matches anything;
    pattern type ANY matches both kinds by exact name, MATCH every binding that applies to the
    named resource (its literal name, the wildcard, and the prefixes of the name)."""

    resource_type: ResourceType
    name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: AclOperation
    permission: AclPermissionType

    def invalid(self) -> str | None:
        for value, enum in ((self.resource_type, ResourceType), (self.pattern_type, PatternType),
                            (self.operation, AclOperation), (self.permission, AclPermissionType)):
            if value == enum.UNKNOWN:
                return f"Filter contains UNKNOWN {enum.__name__}"
        return None

    def matches(self, acl: AclBinding) -> bool:
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        if not self._matches_pattern(acl):
            return False
        return ((self.principal is None or self.principal == acl.principal)
                and (self.host is None or self.host == acl.host)
                and self.operation in (AclOperation.ANY, acl.operation)
                and self.permission in (AclPermissionType.ANY, acl.permission))

    def _matches_pattern(self, acl: AclBinding) -> bool:
        if self.pattern_type == PatternType.MATCH:
            if self.name is None:
                return True
            if acl.pattern_type == PatternType.LITERAL:
                return acl.name in (self.name, WILDCARD)
            return self.name.startswith(acl.name)
        if self.pattern_type not in (PatternType.ANY, acl.pattern_type):
            return False
        return self.name is None or self.name == acl.name


class Authorizer:
    """The bindings of the cluster and the decisions taken on them (see module docstring).

    Invariant: `_cache` holds only decisions taken on the current bindings; `update` empties it.
    """

    def __init__(self, super_users: Iterable[str], allow_everyone_if_no_acl_found: bool) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_everyone_if_no_acl_found
        self.acls: frozenset[AclBinding] = frozenset()
        # resource type -> literal name -> bindings; resource type -> prefix -> bindings
        self._literal: dict[ResourceType, dict[str, list[AclBinding]]] = {}
        self._prefixed: dict[ResourceType, dict[str, list[AclBinding]]] = {}
        self._cache: dict[tuple[str, str, AclOperation, ResourceType, str], bool] = {}

    def update(self, acls: Iterable[AclBinding]) -> None:
        """Replaces the bindings (a new metadata snapshot); forgets every cached decision."""
        acls = frozenset(acls)
        if acls == self.acls:
            return
        self.acls = acls
        self._literal, self._prefixed = {}, {}
        for acl in acls:
            index = self._literal if acl.pattern_type == PatternType.LITERAL else self._prefixed
            index.setdefault(acl.resource_type, {}).setdefault(acl.name, []).append(acl)
        self._cache = {}

    def authorize(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                  name: str, audit: bool = True) -> bool:
        """May `principal` connected from `host` do `operation` on the resource?  `audit`: log a
        denial on pyk.audit (False where a denial only filters what is shown)."""
        key = (principal, host, operation, resource_type, name)
        allowed = self._cache.get(key)
        if allowed is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache = {}
            allowed = self._cache[key] = self._decide(principal, host, operation, resource_type, name)
        if not allowed and audit:
            AUDIT.info("authorization denied: principal=%s host=%s operation=%s resource=%s:%s",
                       principal, host, operation.name, resource_type.name, name)
        return allowed

    def _applicable(self, resource_type: ResourceType, name: str) -> list[AclBinding]:
        found: list[AclBinding] = []
        literal = self._literal.get(resource_type)
        if literal:
            found += literal.get(name, ())
            found += literal.get(WILDCARD, ())
        prefixed = self._prefixed.get(resource_type)
        if prefixed:
            for prefix, acls in prefixed.items():
                if name.startswith(prefix):
                    found += acls
        return found

    def _decide(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                name: str) -> bool:
        if principal in self.super_users:
            return True
        acls = self._applicable(resource_type, name)
        if not acls:
            return self.allow_if_no_acl
        principals = (principal, WILDCARD_PRINCIPAL)
        hosts = (host, WILDCARD)
        mine = [a for a in acls if a.principal in principals and a.host in hosts]
        if any(a.permission == AclPermissionType.DENY and a.operation in (operation, AclOperation.ALL) for a in mine):
            return False
        allowing = _IMPLIED_BY.get(operation) or (operation, AclOperation.ALL)
        return any(a.permission == AclPermissionType.ALLOW and a.operation in allowing for a in mine)

    def authorize_any(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType) -> bool:
        """May the principal do `operation` on at least one resource of the type (Kafka's
        authorizeByResourceType, KIP-679): some ALLOW pattern for it (the operation or ALL) that
        no DENY pattern covers.  A wildcard name counts as every name."""
        if principal in self.super_users:
            return True
        key = (principal, host, operation, resource_type, "\0any")  # never a real resource name
        allowed = self._cache.get(key)
        if allowed is not None:
            return allowed
        principals, hosts, ops = (principal, WILDCARD_PRINCIPAL), (host, WILDCARD), (operation, AclOperation.ALL)
        mine = [a for a in self.acls if a.resource_type == resource_type and a.principal in principals
                and a.host in hosts and a.operation in ops]
        if not any(a.resource_type == resource_type for a in self.acls):
            allowed = self.allow_if_no_acl
        else:
            denied_literal = {a.name for a in mine if a.permission == AclPermissionType.DENY
                              and a.pattern_type == PatternType.LITERAL}
            denied_prefix = [a.name for a in mine if a.permission == AclPermissionType.DENY
                             and a.pattern_type == PatternType.PREFIXED]

            def denied(allow: AclBinding) -> bool:
                """A DENY covers the ALLOW: the wildcard, a prefix of its name, or (a literal
                ALLOW) its very name."""
                return (WILDCARD in denied_literal or any(allow.name.startswith(p) for p in denied_prefix)
                        or (allow.pattern_type == PatternType.LITERAL and allow.name in denied_literal))

            allowed = any(a.permission == AclPermissionType.ALLOW and not denied(a) for a in mine)
        self._cache[key] = allowed
        return allowed

    def describe(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        return sorted(a for a in self.acls if acl_filter.matches(a))

