"""ACL APIs without an authorizer: every answer is SECURITY_DISABLED, as Kafka without one gives,
so admin clients and tools report "security is disabled" instead of an unsupported API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import BrokerProcess, ExternalBroker, confluent_admin


def _binding(topic: str) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                      AclOperation.READ, AclPermissionType.ALLOW)  # fmt: skip


def _filter() -> Any:
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                            AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip


def _security_disabled(future: Any) -> None:
    from confluent_kafka import KafkaError, KafkaException

    with pytest.raises(KafkaException) as info:
        future.result(timeout=20)
    assert info.value.args[0].code() == KafkaError.SECURITY_DISABLED, info.value


def test_confluent_acl_calls_answer_security_disabled(
    broker: BrokerProcess | ExternalBroker, topic: str
) -> None:
    admin = confluent_admin(broker.bootstrap)
    # librdkafka reports DescribeAcls' SECURITY_DISABLED as no ACLs, against Kafka as here.
    assert admin.describe_acls(_filter(), request_timeout=20).result(timeout=20) == []
    for future in admin.create_acls([_binding(topic)], request_timeout=20).values():
        _security_disabled(future)
    for future in admin.delete_acls([_filter()], request_timeout=20).values():
        _security_disabled(future)


def test_kafka_python_describe_acls_reports_security_disabled(broker: BrokerProcess | ExternalBroker) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )
    from kafka.errors import SecurityDisabledError

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        acl_filter = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                      ACLResourcePatternType.ANY))  # fmt: skip
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(acl_filter)
    finally:
        admin.close()
