"""The consumer group protocol of KIP-848: ConsumerGroupHeartbeat (68) 0-1, ConsumerGroupDescribe
(69) 0-1.

Hand-written from Kafka's ConsumerGroupHeartbeatRequest.json / Response.json (4.0).  Version 1
adds `subscribed_topic_regex` (KIP-848) and makes the member choose its own member id
(KIP-1082: it sends a fresh UUID with epoch 0); v0 members join with an empty id and get one.
Every field that may be "unchanged since the last heartbeat" is nullable and null means
unchanged; the response's `assignment` is null when the member's assignment did not change.
Partitions are named by topic id, never by topic name.

ConsumerGroupDescribe (Kafka's ConsumerGroupDescribeRequest.json / Response.json, 4.0) is
DescribeGroups for consumer-protocol groups: epochs, assignor, and per member its
subscription, current and target assignment (topic id and name).  Version 1 (KIP-1099) only
adds the member's type to the response (0 classic, 1 consumer, -1 unknown).
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

CONSUMER_GROUP_HEARTBEAT_REQUEST = Message(
    68, "request", "ConsumerGroupHeartbeatRequest", valid="0-1", flexible="0+", fields=[
        F("group_id", "string", "0+"),
        F("member_id", "string", "0+"),
        # 0 joins, -1 leaves, -2 leaves a static member that will come back.
        F("member_epoch", "int32", "0+"),
        F("instance_id", "string", "0+", nullable="0+", default=None),
        F("rack_id", "string", "0+", nullable="0+", default=None),
        F("rebalance_timeout_ms", "int32", "0+", default=-1),
        F("subscribed_topic_names", "[]string", "0+", nullable="0+", default=None),
        F("subscribed_topic_regex", "string", "1+", nullable="1+", default=None),
        F("server_assignor", "string", "0+", nullable="0+", default=None),
        F("topic_partitions", "[]TopicPartitions", "0+", nullable="0+", default=None, fields=[
            F("topic_id", "uuid", "0+"),
            F("partitions", "[]int32", "0+"),
        ]),
    ])

CONSUMER_GROUP_HEARTBEAT_RESPONSE = Message(
    68, "response", "ConsumerGroupHeartbeatResponse", valid="0-1", flexible="0+", fields=[
        F("throttle_time_ms", "int32", "0+"),
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
        F("member_id", "string", "0+", nullable="0+", default=None),
        F("member_epoch", "int32", "0+"),
        F("heartbeat_interval_ms", "int32", "0+"),
        F("assignment", "Assignment", "0+", nullable="0+", default=None, fields=[
            F("topic_partitions", "[]TopicPartitions", "0+", fields=[
                F("topic_id", "uuid", "0+"),
                F("partitions", "[]int32", "0+"),
            ]),
        ]),
    ])

CONSUMER_GROUP_DESCRIBE_REQUEST = Message(
    69, "request", "ConsumerGroupDescribeRequest", valid="0-1", flexible="0+", fields=[
        F("group_ids", "[]string", "0+"),
        F("include_authorized_operations", "bool", "0+"),
    ])

_DESCRIBED_ASSIGNMENT = [
    F("topic_partitions", "[]TopicPartitions", "0+", fields=[
        F("topic_id", "uuid", "0+"),
        F("topic_name", "string", "0+"),
        F("partitions", "[]int32", "0+"),
    ]),
]

CONSUMER_GROUP_DESCRIBE_RESPONSE = Message(
    69, "response", "ConsumerGroupDescribeResponse", valid="0-1", flexible="0+", fields=[
        F("throttle_time_ms", "int32", "0+"),
        F("groups", "[]DescribedGroup", "0+", fields=[
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
            F("group_id", "string", "0+"),
            F("group_state", "string", "0+"),
            F("group_epoch", "int32", "0+"),
            F("assignment_epoch", "int32", "0+"),
            F("assignor_name", "string", "0+"),
            F("members", "[]Member", "0+", fields=[
                F("member_id", "string", "0+"),
                F("instance_id", "string", "0+", nullable="0+", default=None),
                F("rack_id", "string", "0+", nullable="0+", default=None),
                F("member_epoch", "int32", "0+"),
                F("client_id", "string", "0+"),
                F("client_host", "string", "0+"),
                F("subscribed_topic_names", "[]string", "0+"),
                F("subscribed_topic_regex", "string", "0+", nullable="0+", default=None),
                F("assignment", "Assignment", "0+", fields=_DESCRIBED_ASSIGNMENT),
                F("target_assignment", "Assignment", "0+", fields=_DESCRIBED_ASSIGNMENT),
                F("member_type", "int8", "1+", default=-1, ignorable=True),
            ]),
            F("authorized_operations", "int32", "0+", default=-2147483648),
        ]),
    ])
