"""The API registry: every Kafka api key, and the request/response specs pyk implements.

`ApiKey` lists all api keys of Apache Kafka (as of 3.9; numbers and names as in Kafka's
`ApiKeys.java`), so a request for an API pyk has no spec for is told apart from garbage:
an unknown number is a protocol violation, a known but unimplemented one is not.
`FIRST_FLEXIBLE` gives each API's first flexible version, which fixes its request header
version even when pyk has no spec for it.

`SPECS` maps each implemented api key to its (request, response) `Message`s; `SUPPORTED` is
the version range those specs cover.  The server advertises the subset its handlers serve.
"""

from __future__ import annotations

from enum import IntEnum

from pyk.protocol.messages import (
    acls,
    api_versions,
    cluster,
    configs,
    consumer_groups,
    fetch,
    groups,
    init_producer_id,
    list_offsets,
    log_dirs,
    metadata,
    offset_for_leader_epoch,
    produce,
    quotas,
    sasl,
    topics,
    txn,
)
from pyk.protocol.spec import Message


class ApiKey(IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    LEADER_AND_ISR = 4
    STOP_REPLICA = 5
    UPDATE_METADATA = 6
    CONTROLLED_SHUTDOWN = 7
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    ALTER_REPLICA_LOG_DIRS = 34
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    CREATE_DELEGATION_TOKEN = 38
    RENEW_DELEGATION_TOKEN = 39
    EXPIRE_DELEGATION_TOKEN = 40
    DESCRIBE_DELEGATION_TOKEN = 41
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_CLIENT_QUOTAS = 48
    ALTER_CLIENT_QUOTAS = 49
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    ALTER_USER_SCRAM_CREDENTIALS = 51
    VOTE = 52
    BEGIN_QUORUM_EPOCH = 53
    END_QUORUM_EPOCH = 54
    DESCRIBE_QUORUM = 55
    ALTER_PARTITION = 56
    UPDATE_FEATURES = 57
    ENVELOPE = 58
    FETCH_SNAPSHOT = 59
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    BROKER_REGISTRATION = 62
    BROKER_HEARTBEAT = 63
    UNREGISTER_BROKER = 64
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    ALLOCATE_PRODUCER_IDS = 67
    CONSUMER_GROUP_HEARTBEAT = 68
    CONSUMER_GROUP_DESCRIBE = 69
    CONTROLLER_REGISTRATION = 70
    GET_TELEMETRY_SUBSCRIPTIONS = 71
    PUSH_TELEMETRY = 72
    ASSIGN_REPLICAS_TO_DIRS = 73
    LIST_CLIENT_METRICS_RESOURCES = 74
    DESCRIBE_TOPIC_PARTITIONS = 75
    SHARE_GROUP_HEARTBEAT = 76
    SHARE_GROUP_DESCRIBE = 77
    SHARE_FETCH = 78
    SHARE_ACKNOWLEDGE = 79
    ADD_RAFT_VOTER = 80
    REMOVE_RAFT_VOTER = 81
    UPDATE_RAFT_VOTER = 82
    INITIALIZE_SHARE_GROUP_STATE = 83
    READ_SHARE_GROUP_STATE = 84
    WRITE_SHARE_GROUP_STATE = 85
    DELETE_SHARE_GROUP_STATE = 86
    READ_SHARE_GROUP_STATE_SUMMARY = 87


# First flexible version of every API (None: never flexible), from Kafka's flexibleVersions.
FIRST_FLEXIBLE: dict[ApiKey, int | None] = {
    ApiKey.PRODUCE: 9,
    ApiKey.FETCH: 12,
    ApiKey.LIST_OFFSETS: 6,
    ApiKey.METADATA: 9,
    ApiKey.LEADER_AND_ISR: 4,
    ApiKey.STOP_REPLICA: 2,
    ApiKey.UPDATE_METADATA: 6,
    ApiKey.CONTROLLED_SHUTDOWN: 3,
    ApiKey.OFFSET_COMMIT: 8,
    ApiKey.OFFSET_FETCH: 6,
    ApiKey.FIND_COORDINATOR: 3,
    ApiKey.JOIN_GROUP: 6,
    ApiKey.HEARTBEAT: 4,
    ApiKey.LEAVE_GROUP: 4,
    ApiKey.SYNC_GROUP: 4,
    ApiKey.DESCRIBE_GROUPS: 5,
    ApiKey.LIST_GROUPS: 3,
    ApiKey.SASL_HANDSHAKE: None,
    ApiKey.API_VERSIONS: 3,
    ApiKey.CREATE_TOPICS: 5,
    ApiKey.DELETE_TOPICS: 4,
    ApiKey.DELETE_RECORDS: 2,
    ApiKey.INIT_PRODUCER_ID: 2,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: 4,
    ApiKey.ADD_PARTITIONS_TO_TXN: 3,
    ApiKey.ADD_OFFSETS_TO_TXN: 3,
    ApiKey.END_TXN: 3,
    ApiKey.WRITE_TXN_MARKERS: 1,
    ApiKey.TXN_OFFSET_COMMIT: 3,
    ApiKey.DESCRIBE_ACLS: 2,
    ApiKey.CREATE_ACLS: 2,
    ApiKey.DELETE_ACLS: 2,
    ApiKey.DESCRIBE_CONFIGS: 4,
    ApiKey.ALTER_CONFIGS: 2,
    ApiKey.ALTER_REPLICA_LOG_DIRS: 2,
    ApiKey.DESCRIBE_LOG_DIRS: 2,
    ApiKey.SASL_AUTHENTICATE: 2,
    ApiKey.CREATE_PARTITIONS: 2,
    ApiKey.CREATE_DELEGATION_TOKEN: 2,
    ApiKey.RENEW_DELEGATION_TOKEN: 2,
    ApiKey.EXPIRE_DELEGATION_TOKEN: 2,
    ApiKey.DESCRIBE_DELEGATION_TOKEN: 2,
    ApiKey.DELETE_GROUPS: 2,
    ApiKey.ELECT_LEADERS: 2,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: 1,
    ApiKey.OFFSET_DELETE: None,
    ApiKey.DESCRIBE_CLIENT_QUOTAS: 1,
    ApiKey.ALTER_CLIENT_QUOTAS: 1,
    ApiKey.BEGIN_QUORUM_EPOCH: 1,
    ApiKey.END_QUORUM_EPOCH: 1,
}
# Every API introduced after KIP-482 is flexible from version 0.
for _key in ApiKey:
    FIRST_FLEXIBLE.setdefault(_key, 0)

_ALL_SPECS: list[tuple[Message, Message]] = [
    (api_versions.REQUEST, api_versions.RESPONSE),
    (metadata.REQUEST, metadata.RESPONSE),
    (metadata.DESCRIBE_TOPIC_PARTITIONS_REQUEST, metadata.DESCRIBE_TOPIC_PARTITIONS_RESPONSE),
    (produce.REQUEST, produce.RESPONSE),
    (fetch.REQUEST, fetch.RESPONSE),
    (list_offsets.REQUEST, list_offsets.RESPONSE),
    (topics.CREATE_TOPICS_REQUEST, topics.CREATE_TOPICS_RESPONSE),
    (topics.DELETE_TOPICS_REQUEST, topics.DELETE_TOPICS_RESPONSE),
    (topics.CREATE_PARTITIONS_REQUEST, topics.CREATE_PARTITIONS_RESPONSE),
    (topics.DELETE_RECORDS_REQUEST, topics.DELETE_RECORDS_RESPONSE),
    (topics.ELECT_LEADERS_REQUEST, topics.ELECT_LEADERS_RESPONSE),
    (topics.ALTER_PARTITION_REASSIGNMENTS_REQUEST, topics.ALTER_PARTITION_REASSIGNMENTS_RESPONSE),
    (topics.LIST_PARTITION_REASSIGNMENTS_REQUEST, topics.LIST_PARTITION_REASSIGNMENTS_RESPONSE),
    (acls.DESCRIBE_ACLS_REQUEST, acls.DESCRIBE_ACLS_RESPONSE),
    (acls.CREATE_ACLS_REQUEST, acls.CREATE_ACLS_RESPONSE),
    (acls.DELETE_ACLS_REQUEST, acls.DELETE_ACLS_RESPONSE),
    (configs.DESCRIBE_CONFIGS_REQUEST, configs.DESCRIBE_CONFIGS_RESPONSE),
    (configs.ALTER_CONFIGS_REQUEST, configs.ALTER_CONFIGS_RESPONSE),
    (configs.INCREMENTAL_ALTER_CONFIGS_REQUEST, configs.INCREMENTAL_ALTER_CONFIGS_RESPONSE),
    (cluster.DESCRIBE_CLUSTER_REQUEST, cluster.DESCRIBE_CLUSTER_RESPONSE),
    (log_dirs.DESCRIBE_LOG_DIRS_REQUEST, log_dirs.DESCRIBE_LOG_DIRS_RESPONSE),
    (init_producer_id.REQUEST, init_producer_id.RESPONSE),
    (offset_for_leader_epoch.REQUEST, offset_for_leader_epoch.RESPONSE),
    (groups.FIND_COORDINATOR_REQUEST, groups.FIND_COORDINATOR_RESPONSE),
    (groups.JOIN_GROUP_REQUEST, groups.JOIN_GROUP_RESPONSE),
    (groups.SYNC_GROUP_REQUEST, groups.SYNC_GROUP_RESPONSE),
    (groups.HEARTBEAT_REQUEST, groups.HEARTBEAT_RESPONSE),
    (groups.LEAVE_GROUP_REQUEST, groups.LEAVE_GROUP_RESPONSE),
    (groups.OFFSET_COMMIT_REQUEST, groups.OFFSET_COMMIT_RESPONSE),
    (groups.OFFSET_FETCH_REQUEST, groups.OFFSET_FETCH_RESPONSE),
    (groups.LIST_GROUPS_REQUEST, groups.LIST_GROUPS_RESPONSE),
    (groups.DESCRIBE_GROUPS_REQUEST, groups.DESCRIBE_GROUPS_RESPONSE),
    (groups.DELETE_GROUPS_REQUEST, groups.DELETE_GROUPS_RESPONSE),
    (groups.OFFSET_DELETE_REQUEST, groups.OFFSET_DELETE_RESPONSE),
    (consumer_groups.CONSUMER_GROUP_HEARTBEAT_REQUEST, consumer_groups.CONSUMER_GROUP_HEARTBEAT_RESPONSE),
    (consumer_groups.CONSUMER_GROUP_DESCRIBE_REQUEST, consumer_groups.CONSUMER_GROUP_DESCRIBE_RESPONSE),
    (txn.ADD_PARTITIONS_TO_TXN_REQUEST, txn.ADD_PARTITIONS_TO_TXN_RESPONSE),
    (txn.ADD_OFFSETS_TO_TXN_REQUEST, txn.ADD_OFFSETS_TO_TXN_RESPONSE),
    (txn.END_TXN_REQUEST, txn.END_TXN_RESPONSE),
    (txn.WRITE_TXN_MARKERS_REQUEST, txn.WRITE_TXN_MARKERS_RESPONSE),
    (txn.TXN_OFFSET_COMMIT_REQUEST, txn.TXN_OFFSET_COMMIT_RESPONSE),
    (txn.DESCRIBE_PRODUCERS_REQUEST, txn.DESCRIBE_PRODUCERS_RESPONSE),
    (txn.DESCRIBE_TRANSACTIONS_REQUEST, txn.DESCRIBE_TRANSACTIONS_RESPONSE),
    (txn.LIST_TRANSACTIONS_REQUEST, txn.LIST_TRANSACTIONS_RESPONSE),
    (sasl.SASL_HANDSHAKE_REQUEST, sasl.SASL_HANDSHAKE_RESPONSE),
    (sasl.SASL_AUTHENTICATE_REQUEST, sasl.SASL_AUTHENTICATE_RESPONSE),
    (sasl.DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST, sasl.DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE),
    (sasl.ALTER_USER_SCRAM_CREDENTIALS_REQUEST, sasl.ALTER_USER_SCRAM_CREDENTIALS_RESPONSE),
    (quotas.DESCRIBE_CLIENT_QUOTAS_REQUEST, quotas.DESCRIBE_CLIENT_QUOTAS_RESPONSE),
    (quotas.ALTER_CLIENT_QUOTAS_REQUEST, quotas.ALTER_CLIENT_QUOTAS_RESPONSE),
]


def _registry(pairs: list[tuple[Message, Message]]) -> dict[ApiKey, tuple[Message, Message]]:
    specs: dict[ApiKey, tuple[Message, Message]] = {}
    for request, response in pairs:
        if (request.api_key, request.valid, request.flexible) != (response.api_key, response.valid, response.flexible):
            raise ValueError(f"{request.name} and {response.name} disagree on key or versions")
        specs[ApiKey(request.api_key)] = (request, response)
    return specs


SPECS: dict[ApiKey, tuple[Message, Message]] = _registry(_ALL_SPECS)

SUPPORTED: dict[ApiKey, tuple[int, int]] = {
    key: (request.valid.lo, request.valid.hi if request.valid.hi is not None else request.valid.lo)
    for key, (request, _) in SPECS.items()
}
