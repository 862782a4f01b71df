"""Metadata (key 3), versions 0-12: brokers, cluster id, controller, topics and partitions;
DescribeTopicPartitions (key 75), version 0: the partitions alone, paged.

Request `topics`: null (v1+) asks for every topic; in v0 an empty array does.  v10+ may name
topics by id, v12 makes topic names nullable for that.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(3, "request", "MetadataRequest", valid="0-12", flexible="9+", fields=[
    F("topics", "[]MetadataRequestTopic", "0+", nullable="1+", fields=[
        F("topic_id", "uuid", "10+", ignorable=True),
        F("name", "string", "0+", nullable="10+"),
    ]),
    F("allow_auto_topic_creation", "bool", "4+", default=True),
    F("include_cluster_authorized_operations", "bool", "8-10"),
    F("include_topic_authorized_operations", "bool", "8+"),
])

RESPONSE = Message(3, "response", "MetadataResponse", valid="0-12", flexible="9+", fields=[
    F("throttle_time_ms", "int32", "3+", ignorable=True),
    F("brokers", "[]MetadataResponseBroker", "0+", fields=[
        F("node_id", "int32", "0+"),
        F("host", "string", "0+"),
        F("port", "int32", "0+"),
        F("rack", "string", "1+", nullable="1+", default=None, ignorable=True),
    ]),
    F("cluster_id", "string", "2+", nullable="2+", default=None, ignorable=True),
    F("controller_id", "int32", "1+", default=-1, ignorable=True),
    F("topics", "[]MetadataResponseTopic", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("name", "string", "0+", nullable="12+"),
        F("topic_id", "uuid", "10+", ignorable=True),
        F("is_internal", "bool", "1+", default=False, ignorable=True),
        F("partitions", "[]MetadataResponsePartition", "0+", fields=[
            F("error_code", "int16", "0+"),
            F("partition_index", "int32", "0+"),
            F("leader_id", "int32", "0+"),
            F("leader_epoch", "int32", "7+", default=-1, ignorable=True),
            F("replica_nodes", "[]int32", "0+"),
            F("isr_nodes", "[]int32", "0+"),
            F("offline_replicas", "[]int32", "5+", ignorable=True),
        ]),
        F("topic_authorized_operations", "int32", "8+", default=-2147483648),
    ]),
    F("cluster_authorized_operations", "int32", "8-10", default=-2147483648),
])

# DescribeTopicPartitions (key 75, KIP-966): Metadata's partitions with eligible leader replicas,
# paged by a cursor; Kafka's admin client (hence kafka-topics --describe) prefers it to Metadata.
_CURSOR = [
    F("topic_name", "string", "0+"),
    F("partition_index", "int32", "0+"),
]

DESCRIBE_TOPIC_PARTITIONS_REQUEST = Message(75, "request", "DescribeTopicPartitionsRequest", valid="0", flexible="0+",
                                            fields=[
    F("topics", "[]TopicRequest", "0+", fields=[
        F("name", "string", "0+"),
    ]),
    F("response_partition_limit", "int32", "0+", default=2000),
    F("cursor", "Cursor", "0+", nullable="0+", default=None, fields=_CURSOR),
])

DESCRIBE_TOPIC_PARTITIONS_RESPONSE = Message(75, "response", "DescribeTopicPartitionsResponse", valid="0", flexible="0+",
                                             fields=[
    F("throttle_time_ms", "int32", "0+", ignorable=True),
    F("topics", "[]DescribeTopicPartitionsResponseTopic", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("name", "string", "0+", nullable="0+"),
        F("topic_id", "uuid", "0+", ignorable=True),
        F("is_internal", "bool", "0+", default=False, ignorable=True),
        F("partitions", "[]DescribeTopicPartitionsResponsePartition", "0+", fields=[
            F("error_code", "int16", "0+"),
            F("partition_index", "int32", "0+"),
            F("leader_id", "int32", "0+"),
            F("leader_epoch", "int32", "0+", default=-1, ignorable=True),
            F("replica_nodes", "[]int32", "0+"),
            F("isr_nodes", "[]int32", "0+"),
            F("eligible_leader_replicas", "[]int32", "0+", nullable="0+", default=None),
            F("last_known_elr", "[]int32", "0+", nullable="0+", default=None),
            F("offline_replicas", "[]int32", "0+", ignorable=True),
        ]),
        F("topic_authorized_operations", "int32", "0+", default=-2147483648),
    ]),
    F("next_cursor", "Cursor", "0+", nullable="0+", default=None, fields=_CURSOR),
])
