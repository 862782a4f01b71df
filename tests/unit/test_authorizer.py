"""The authorizer's decision rules in process (Kafka's AclAuthorizer semantics), next to the
end-to-end matrix of tests/security/test_acls.py: operation implications, prefixes against
literals and the wildcard, hosts, DENY over ALLOW, super users, the empty-ACL default,
authorizeByResourceType (KIP-679), the cache's invalidation and the filters of DescribeAcls."""

from __future__ import annotations

from pyk.server.security.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    Authorizer,
    PatternType,
    ResourceType,
)

ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
Op = AclOperation
HOST = "10.0.0.1"


def acl(name: str, op: AclOperation, permission: AclPermissionType = ALLOW, principal: str = "User:alice",
        pattern: PatternType = LITERAL, host: str = "*", rtype: ResourceType = TOPIC) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, permission)


def authorizer(*acls: AclBinding, super_users: tuple[str, ...] = (), allow_if_none: bool = False) -> Authorizer:
    a = Authorizer(super_users, allow_if_none)
    a.update(acls)
    return a


def may(a: Authorizer, op: AclOperation, name: str, principal: str = "User:alice", host: str = HOST,
        rtype: ResourceType = TOPIC) -> bool:
    return a.authorize(principal, host, op, rtype, name, audit=False)


def test_implications() -> None:
    a = authorizer(acl("t", Op.WRITE), acl("c", Op.ALTER_CONFIGS))
    assert may(a, Op.WRITE, "t") and may(a, Op.DESCRIBE, "t")  # WRITE implies DESCRIBE
    assert not may(a, Op.READ, "t") and not may(a, Op.DESCRIBE_CONFIGS, "t")
    assert may(a, Op.DESCRIBE_CONFIGS, "c") and not may(a, Op.DESCRIBE, "c")
    everything = authorizer(acl("t", Op.ALL))
    assert all(may(everything, op, "t") for op in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER_CONFIGS, Op.DESCRIBE))


def test_patterns_and_wildcards() -> None:
    a = authorizer(acl("logs-", Op.READ, pattern=PREFIXED), acl("*", Op.READ, principal="User:bob"),
                   acl("shared", Op.READ, principal="User:*"))
    assert may(a, Op.READ, "logs-app") and may(a, Op.READ, "logs-") and not may(a, Op.READ, "log")
    assert may(a, Op.READ, "anything", principal="User:bob")  # literal "*" is every topic
    assert may(a, Op.READ, "shared", principal="User:carol")  # User:* is every principal
    assert not may(a, Op.READ, "logs-app", rtype=GROUP)  # patterns are per resource type


def test_hosts() -> None:
    a = authorizer(acl("t", Op.READ, host=HOST))
    assert may(a, Op.READ, "t") and not may(a, Op.READ, "t", host="10.0.0.2")


def test_deny_beats_allow_and_only_its_operation() -> None:
    a = authorizer(acl("logs-", Op.ALL, pattern=PREFIXED), acl("logs-secret", Op.READ, DENY),
                   acl("open", Op.READ, principal="User:*"), acl("open", Op.ALL, DENY, principal="User:dave"))
    assert not may(a, Op.READ, "logs-secret")
    assert may(a, Op.WRITE, "logs-secret") and may(a, Op.DESCRIBE, "logs-secret")  # DENY READ is READ only
    assert may(a, Op.READ, "open", principal="User:carol") and not may(a, Op.READ, "open", principal="User:dave")


def test_super_users_and_the_empty_acl_default() -> None:
    a = authorizer(acl("t", Op.READ), super_users=("User:admin",))
    assert may(a, Op.DELETE, "t", principal="User:admin") and may(a, Op.READ, "other", principal="User:admin")
    assert not may(a, Op.READ, "other")  # no ACL names it: closed by default
    open_ = authorizer(acl("t", Op.READ), allow_if_none=True)
    assert may(open_, Op.WRITE, "other")  # no ACL names it: open
    assert not may(open_, Op.WRITE, "t")  # an ACL names it: only what it allows


def test_authorize_any() -> None:
    a = authorizer(acl("logs-", Op.WRITE, pattern=PREFIXED), acl("logs-", Op.WRITE, DENY, pattern=PREFIXED,
                                                                 principal="User:bob"))
    assert a.authorize_any("User:alice", HOST, Op.WRITE, TOPIC)
    assert not a.authorize_any("User:bob", HOST, Op.WRITE, TOPIC)  # its only allow is denied
    assert not a.authorize_any("User:carol", HOST, Op.WRITE, TOPIC)
    assert not authorizer(acl("t", Op.WRITE), acl("*", Op.WRITE, DENY)).authorize_any("User:alice", HOST, Op.WRITE,
                                                                                        TOPIC)
    # a literal DENY of the prefix's own name leaves the prefix's other topics writable
    assert authorizer(acl("p-", Op.WRITE, pattern=PREFIXED), acl("p-", Op.WRITE, DENY)).authorize_any(
        "User:alice", HOST, Op.WRITE, TOPIC)


def test_cache_is_dropped_on_update() -> None:
    a = authorizer()
    assert not may(a, Op.READ, "t")
    a.update([acl("t", Op.READ)])
    assert may(a, Op.READ, "t")
    a.update([])
    assert not may(a, Op.READ, "t")


def test_filters() -> None:
    acls = [acl("logs-", Op.ALL, pattern=PREFIXED), acl("logs-app", Op.READ), acl("*", Op.READ),
            acl("logs-app", Op.READ, rtype=GROUP)]
    a = authorizer(*acls)

    def found(name: str | None, pattern: PatternType, rtype: ResourceType = ResourceType.ANY) -> list[AclBinding]:
        return a.describe(AclBindingFilter(rtype, name, pattern, None, None, Op.ANY, AclPermissionType.ANY))

    assert found(None, PatternType.ANY) == sorted(acls)
    assert found("logs-app", PatternType.ANY, TOPIC) == [acls[1]]
    assert found("logs-app", PatternType.MATCH, TOPIC) == sorted(acls[:3])
    assert found("logs-", PatternType.PREFIXED) == [acls[0]]
    assert found("logs-app", PatternType.LITERAL) == sorted([acls[1], acls[3]])


def test_validation() -> None:
    assert acl("g", Op.WRITE, rtype=GROUP).invalid() is not None  # groups have no WRITE
    assert acl("*", Op.READ, pattern=PREFIXED).invalid() is not None
    assert AclBinding(ResourceType.CLUSTER, "other", LITERAL, "User:a", "*", Op.ALTER, ALLOW).invalid() is not None
    assert acl("t", Op.READ, principal="alice").invalid() is not None  # no principal type
    assert acl("t", Op.ALL).invalid() is None and acl("t", Op.READ, pattern=PREFIXED).invalid() is None


def test_config_keys() -> None:
    """Kafka's keys: both built-in authorizer classes turn it on, anything else stops start-up;
    super.users is `;`-separated (a certificate's DN holds commas)."""
    import pytest

    from pyk.config import ConfigError, ServerConfig

    config = ServerConfig.load(None, ["authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                                      "super.users=User:admin; User:CN=broker,O=pyk"])
    assert config["super.users"] == ["User:admin", "User:CN=broker,O=pyk"]
    assert config["allow.everyone.if.no.acl.found"] is False
    assert ServerConfig.load(None, [])["authorizer.class.name"] == ""
    with pytest.raises(ConfigError, match="authorizer.class.name"):
        ServerConfig.load(None, ["authorizer.class.name=com.example.MyAuthorizer"])
