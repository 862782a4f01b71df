"""Topic administration: CreateTopics (19) 0-7, DeleteTopics (20) 0-6, CreatePartitions (37)
0-3, DeleteRecords (21) 0-2, ElectLeaders (43) 0-2, AlterPartitionReassignments (45) 0-1,
ListPartitionReassignments (46) 0 (KIP-455).

Nullable error messages default to null here (Kafka's JSON leaves most of them at its implicit
""), so a handler that omits `error_message` sends "no message" rather than an empty one.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

CREATE_TOPICS_REQUEST = Message(19, "request", "CreateTopicsRequest", valid="0-7", flexible="5+", fields=[
    F("topics", "[]CreatableTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("num_partitions", "int32", "0+"),  # -1: the broker default (v4+)
        F("replication_factor", "int16", "0+"),  # -1: the broker default (v4+)
        F("assignments", "[]CreatableReplicaAssignment", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("broker_ids", "[]int32", "0+"),
        ]),
        F("configs", "[]CreatableTopicConfig", "0+", fields=[
            F("name", "string", "0+"),
            F("value", "string", "0+", nullable="0+"),
        ]),
    ]),
    F("timeout_ms", "int32", "0+", default=60000),
    F("validate_only", "bool", "1+", default=False),
])

CREATE_TOPICS_RESPONSE = Message(19, "response", "CreateTopicsResponse", valid="0-7", flexible="5+", fields=[
    F("throttle_time_ms", "int32", "2+", ignorable=True),
    F("topics", "[]CreatableTopicResult", "0+", fields=[
        F("name", "string", "0+"),
        F("topic_id", "uuid", "7+", ignorable=True),
        F("error_code", "int16", "0+"),
        F("error_message", "string", "1+", nullable="0+", default=None, ignorable=True),
        F("topic_config_error_code", "int16", "5+", tagged="5+", tag=0, ignorable=True),
        F("num_partitions", "int32", "5+", default=-1, ignorable=True),
        F("replication_factor", "int16", "5+", default=-1, ignorable=True),
        F("configs", "[]CreatableTopicConfigs", "5+", nullable="5+", ignorable=True, fields=[
            F("name", "string", "5+"),
            F("value", "string", "5+", nullable="5+"),
            F("read_only", "bool", "5+"),
            F("config_source", "int8", "5+", default=-1, ignorable=True),
            F("is_sensitive", "bool", "5+"),
        ]),
    ]),
])

DELETE_TOPICS_REQUEST = Message(20, "request", "DeleteTopicsRequest", valid="0-6", flexible="4+", fields=[
    F("topics", "[]DeleteTopicState", "6+", fields=[
        F("name", "string", "6+", nullable="6+", default=None),
        F("topic_id", "uuid", "6+"),
    ]),
    F("topic_names", "[]string", "0-5", ignorable=True),
    F("timeout_ms", "int32", "0+"),
])

DELETE_TOPICS_RESPONSE = Message(20, "response", "DeleteTopicsResponse", valid="0-6", flexible="4+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("responses", "[]DeletableTopicResult", "0+", fields=[
        F("name", "string", "0+", nullable="6+"),
        F("topic_id", "uuid", "6+", ignorable=True),
        F("error_code", "int16", "0+"),
        F("error_message", "string", "5+", nullable="5+", default=None, ignorable=True),
    ]),
])

CREATE_PARTITIONS_REQUEST = Message(37, "request", "CreatePartitionsRequest", valid="0-3", flexible="2+", fields=[
    F("topics", "[]CreatePartitionsTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("count", "int32", "0+"),  # the new total number of partitions
        F("assignments", "[]CreatePartitionsAssignment", "0+", nullable="0+", fields=[
            F("broker_ids", "[]int32", "0+"),
        ]),
    ]),
    F("timeout_ms", "int32", "0+"),
    F("validate_only", "bool", "0+"),
])

CREATE_PARTITIONS_RESPONSE = Message(37, "response", "CreatePartitionsResponse", valid="0-3", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("results", "[]CreatePartitionsTopicResult", "0+", fields=[
        F("name", "string", "0+"),
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
    ]),
])

DELETE_RECORDS_REQUEST = Message(21, "request", "DeleteRecordsRequest", valid="0-2", flexible="2+", fields=[
    F("topics", "[]DeleteRecordsTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]DeleteRecordsPartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("offset", "int64", "0+"),  # -1: up to the high watermark
        ]),
    ]),
    F("timeout_ms", "int32", "0+"),
])

DELETE_RECORDS_RESPONSE = Message(21, "response", "DeleteRecordsResponse", valid="0-2", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("topics", "[]DeleteRecordsTopicResult", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]DeleteRecordsPartitionResult", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("low_watermark", "int64", "0+"),
            F("error_code", "int16", "0+"),
        ]),
    ]),
])

ELECT_LEADERS_REQUEST = Message(43, "request", "ElectLeadersRequest", valid="0-2", flexible="2+", fields=[
    F("election_type", "int8", "1+"),  # 0: preferred, 1: unclean (v0: preferred)
    F("topic_partitions", "[]TopicPartitions", "0+", nullable="0+", fields=[  # null: every partition
        F("topic", "string", "0+"),
        F("partitions", "[]int32", "0+"),
    ]),
    F("timeout_ms", "int32", "0+", default=60000),
])

ELECT_LEADERS_RESPONSE = Message(43, "response", "ElectLeadersResponse", valid="0-2", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "1+"),
    F("replica_election_results", "[]ReplicaElectionResult", "0+", fields=[
        F("topic", "string", "0+"),
        F("partition_result", "[]PartitionResult", "0+", fields=[
            F("partition_id", "int32", "0+"),
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
        ]),
    ]),
])

ALTER_PARTITION_REASSIGNMENTS_REQUEST = Message(45, "request", "AlterPartitionReassignmentsRequest", valid="0-1",
                                                flexible="0+", fields=[
    F("timeout_ms", "int32", "0+", default=60000),
    F("allow_replication_factor_change", "bool", "1+", default=True),  # KIP-860
    F("topics", "[]ReassignableTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]ReassignablePartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("replicas", "[]int32", "0+", nullable="0+", default=None),  # null: cancel the reassignment
        ]),
    ]),
])

ALTER_PARTITION_REASSIGNMENTS_RESPONSE = Message(45, "response", "AlterPartitionReassignmentsResponse", valid="0-1",
                                                 flexible="0+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("allow_replication_factor_change", "bool", "1+", default=True, ignorable=True),
    F("error_code", "int16", "0+"),
    F("error_message", "string", "0+", nullable="0+", default=None),
    F("responses", "[]ReassignableTopicResponse", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]ReassignablePartitionResponse", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
        ]),
    ]),
])

LIST_PARTITION_REASSIGNMENTS_REQUEST = Message(46, "request", "ListPartitionReassignmentsRequest", valid="0",
                                               flexible="0+", fields=[
    F("timeout_ms", "int32", "0+", default=60000),
    F("topics", "[]ListPartitionReassignmentsTopics", "0+", nullable="0+", default=None, fields=[  # null: all
        F("name", "string", "0+"),
        F("partition_indexes", "[]int32", "0+"),
    ]),
])

LIST_PARTITION_REASSIGNMENTS_RESPONSE = Message(46, "response", "ListPartitionReassignmentsResponse", valid="0",
                                                flexible="0+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "0+"),
    F("error_message", "string", "0+", nullable="0+", default=None),
    F("topics", "[]OngoingTopicReassignment", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]OngoingPartitionReassignment", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("replicas", "[]int32", "0+"),
            F("adding_replicas", "[]int32", "0+"),
            F("removing_replicas", "[]int32", "0+"),
        ]),
    ]),
])
