"""Consumer groups (classic protocol): FindCoordinator (10) 0-4, JoinGroup (11) 0-9,
SyncGroup (14) 0-5, Heartbeat (12) 0-4, LeaveGroup (13) 0-5, OffsetCommit (8) 0-9,
OffsetFetch (9) 0-9, ListGroups (16) 0-4, DescribeGroups (15) 0-5, DeleteGroups (42) 0-2,
OffsetDelete (47) 0.

Batched forms arrive late in some APIs: FindCoordinator v4 looks up many keys at once
(KIP-699), LeaveGroup v3 removes many members (KIP-345), OffsetFetch v8 covers many groups
(KIP-709).  Version 9 of OffsetCommit and OffsetFetch is the first a KIP-848 (consumer-protocol)
member may use: OffsetCommit v9 is v8 (the generation field carries the member epoch), OffsetFetch
v9 names the fetching member (member id and epoch) in each group entry.  Member metadata and assignments are opaque `bytes` (the consumer protocol's own
encoding), copied out of the frame because the coordinator keeps them.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

FIND_COORDINATOR_REQUEST = Message(10, "request", "FindCoordinatorRequest", valid="0-4", flexible="3+", fields=[
    F("key", "string", "0-3"),
    F("key_type", "int8", "1+", default=0),  # 0 group, 1 transaction
    F("coordinator_keys", "[]string", "4+"),
])

FIND_COORDINATOR_RESPONSE = Message(10, "response", "FindCoordinatorResponse", valid="0-4", flexible="3+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("error_code", "int16", "0-3"),
    F("error_message", "string", "1-3", nullable="1-3", default=None, ignorable=True),
    F("node_id", "int32", "0-3"),
    F("host", "string", "0-3"),
    F("port", "int32", "0-3"),
    F("coordinators", "[]Coordinator", "4+", fields=[
        F("key", "string", "4+"),
        F("node_id", "int32", "4+"),
        F("host", "string", "4+"),
        F("port", "int32", "4+"),
        F("error_code", "int16", "4+"),
        F("error_message", "string", "4+", nullable="4+", default=None, ignorable=True),
    ]),
])

JOIN_GROUP_REQUEST = Message(11, "request", "JoinGroupRequest", valid="0-9", flexible="6+", fields=[
    F("group_id", "string", "0+"),
    F("session_timeout_ms", "int32", "0+"),
    F("rebalance_timeout_ms", "int32", "1+", default=-1, ignorable=True),
    F("member_id", "string", "0+"),
    F("group_instance_id", "string", "5+", nullable="5+", default=None),
    F("protocol_type", "string", "0+"),
    F("protocols", "[]JoinGroupRequestProtocol", "0+", fields=[
        F("name", "string", "0+"),
        F("metadata", "bytes", "0+"),
    ]),
    F("reason", "string", "8+", nullable="8+", default=None, ignorable=True),
])

JOIN_GROUP_RESPONSE = Message(11, "response", "JoinGroupResponse", valid="0-9", flexible="6+", fields=[
    F("throttle_time_ms", "int32", "2+", ignorable=True),
    F("error_code", "int16", "0+"),
    F("generation_id", "int32", "0+", default=-1),
    F("protocol_type", "string", "7+", nullable="7+", default=None, ignorable=True),
    F("protocol_name", "string", "0+", nullable="7+"),
    F("leader", "string", "0+"),
    F("skip_assignment", "bool", "9+", default=False),
    F("member_id", "string", "0+"),
    F("members", "[]JoinGroupResponseMember", "0+", fields=[
        F("member_id", "string", "0+"),
        F("group_instance_id", "string", "5+", nullable="5+", default=None, ignorable=True),
        F("metadata", "bytes", "0+"),
    ]),
])

SYNC_GROUP_REQUEST = Message(14, "request", "SyncGroupRequest", valid="0-5", flexible="4+", fields=[
    F("group_id", "string", "0+"),
    F("generation_id", "int32", "0+"),
    F("member_id", "string", "0+"),
    F("group_instance_id", "string", "3+", nullable="3+", default=None),
    F("protocol_type", "string", "5+", nullable="5+", default=None, ignorable=True),
    F("protocol_name", "string", "5+", nullable="5+", default=None, ignorable=True),
    F("assignments", "[]SyncGroupRequestAssignment", "0+", fields=[
        F("member_id", "string", "0+"),
        F("assignment", "bytes", "0+"),
    ]),
])

SYNC_GROUP_RESPONSE = Message(14, "response", "SyncGroupResponse", valid="0-5", flexible="4+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("error_code", "int16", "0+"),
    F("protocol_type", "string", "5+", nullable="5+", default=None, ignorable=True),
    F("protocol_name", "string", "5+", nullable="5+", default=None, ignorable=True),
    F("assignment", "bytes", "0+"),
])

HEARTBEAT_REQUEST = Message(12, "request", "HeartbeatRequest", valid="0-4", flexible="4+", fields=[
    F("group_id", "string", "0+"),
    F("generation_id", "int32", "0+"),
    F("member_id", "string", "0+"),
    F("group_instance_id", "string", "3+", nullable="3+", default=None),
])

HEARTBEAT_RESPONSE = Message(12, "response", "HeartbeatResponse", valid="0-4", flexible="4+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("error_code", "int16", "0+"),
])

LEAVE_GROUP_REQUEST = Message(13, "request", "LeaveGroupRequest", valid="0-5", flexible="4+", fields=[
    F("group_id", "string", "0+"),
    F("member_id", "string", "0-2"),
    F("members", "[]MemberIdentity", "3+", fields=[
        F("member_id", "string", "3+"),
        F("group_instance_id", "string", "3+", nullable="3+", default=None),
        F("reason", "string", "5+", nullable="5+", default=None, ignorable=True),
    ]),
])

LEAVE_GROUP_RESPONSE = Message(13, "response", "LeaveGroupResponse", valid="0-5", flexible="4+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("error_code", "int16", "0+"),
    F("members", "[]MemberResponse", "3+", fields=[
        F("member_id", "string", "3+"),
        F("group_instance_id", "string", "3+", nullable="3+"),
        F("error_code", "int16", "3+"),
    ]),
])

OFFSET_COMMIT_REQUEST = Message(8, "request", "OffsetCommitRequest", valid="0-9", flexible="8+", fields=[
    F("group_id", "string", "0+"),
    F("generation_id_or_member_epoch", "int32", "1+", default=-1, ignorable=True),
    F("member_id", "string", "1+", ignorable=True),
    F("group_instance_id", "string", "7+", nullable="7+", default=None),
    F("retention_time_ms", "int64", "2-4", default=-1, ignorable=True),
    F("topics", "[]OffsetCommitRequestTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]OffsetCommitRequestPartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("committed_offset", "int64", "0+"),
            F("committed_leader_epoch", "int32", "6+", default=-1, ignorable=True),
            F("commit_timestamp", "int64", "1", default=-1),
            F("committed_metadata", "string", "0+", nullable="0+"),
        ]),
    ]),
])

OFFSET_COMMIT_RESPONSE = Message(8, "response", "OffsetCommitResponse", valid="0-9", flexible="8+", fields=[
    F("throttle_time_ms", "int32", "3+", ignorable=True),
    F("topics", "[]OffsetCommitResponseTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]OffsetCommitResponsePartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
        ]),
    ]),
])

OFFSET_FETCH_REQUEST = Message(9, "request", "OffsetFetchRequest", valid="0-9", flexible="6+", fields=[
    F("group_id", "string", "0-7"),
    F("topics", "[]OffsetFetchRequestTopic", "0-7", nullable="2-7", fields=[  # null: all topics
        F("name", "string", "0-7"),
        F("partition_indexes", "[]int32", "0-7"),
    ]),
    F("groups", "[]OffsetFetchRequestGroup", "8+", fields=[
        F("group_id", "string", "8+"),
        # v9 (KIP-848): the fetching member; null / -1 from admin clients and classic members.
        F("member_id", "string", "9+", nullable="9+", default=None, ignorable=True),
        F("member_epoch", "int32", "9+", default=-1, ignorable=True),
        F("topics", "[]OffsetFetchRequestTopics", "8+", nullable="8+", fields=[
            F("name", "string", "8+"),
            F("partition_indexes", "[]int32", "8+"),
        ]),
    ]),
    F("require_stable", "bool", "7+", default=False),
])

OFFSET_FETCH_RESPONSE = Message(9, "response", "OffsetFetchResponse", valid="0-9", flexible="6+", fields=[
    F("throttle_time_ms", "int32", "3+", ignorable=True),
    F("topics", "[]OffsetFetchResponseTopic", "0-7", fields=[
        F("name", "string", "0-7"),
        F("partitions", "[]OffsetFetchResponsePartition", "0-7", fields=[
            F("partition_index", "int32", "0-7"),
            F("committed_offset", "int64", "0-7"),
            F("committed_leader_epoch", "int32", "5-7", default=-1, ignorable=True),
            F("metadata", "string", "0-7", nullable="0-7"),
            F("error_code", "int16", "0-7"),
        ]),
    ]),
    F("error_code", "int16", "2-7", default=0, ignorable=True),
    F("groups", "[]OffsetFetchResponseGroup", "8+", fields=[
        F("group_id", "string", "8+"),
        F("topics", "[]OffsetFetchResponseTopics", "8+", fields=[
            F("name", "string", "8+"),
            F("partitions", "[]OffsetFetchResponsePartitions", "8+", fields=[
                F("partition_index", "int32", "8+"),
                F("committed_offset", "int64", "8+"),
                F("committed_leader_epoch", "int32", "8+", default=-1, ignorable=True),
                F("metadata", "string", "8+", nullable="8+"),
                F("error_code", "int16", "8+"),
            ]),
        ]),
        F("error_code", "int16", "8+", default=0),
    ]),
])

LIST_GROUPS_REQUEST = Message(16, "request", "ListGroupsRequest", valid="0-4", flexible="3+", fields=[
    F("states_filter", "[]string", "4+"),
])

LIST_GROUPS_RESPONSE = Message(16, "response", "ListGroupsResponse", valid="0-4", flexible="3+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("error_code", "int16", "0+"),
    F("groups", "[]ListedGroup", "0+", fields=[
        F("group_id", "string", "0+"),
        F("protocol_type", "string", "0+"),
        F("group_state", "string", "4+", ignorable=True),
    ]),
])

DESCRIBE_GROUPS_REQUEST = Message(15, "request", "DescribeGroupsRequest", valid="0-6", flexible="5+", fields=[
    F("groups", "[]string", "0+"),
    F("include_authorized_operations", "bool", "3+"),
])

DESCRIBE_GROUPS_RESPONSE = Message(15, "response", "DescribeGroupsResponse", valid="0-6", flexible="5+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("groups", "[]DescribedGroup", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("error_message", "string", "6+", nullable="6+", default=None, ignorable=True),
        F("group_id", "string", "0+"),
        F("group_state", "string", "0+"),
        F("protocol_type", "string", "0+"),
        F("protocol_data", "string", "0+"),
        F("members", "[]DescribedGroupMember", "0+", fields=[
            F("member_id", "string", "0+"),
            F("group_instance_id", "string", "4+", nullable="4+", default=None, ignorable=True),
            F("client_id", "string", "0+"),
            F("client_host", "string", "0+"),
            F("member_metadata", "bytes", "0+"),
            F("member_assignment", "bytes", "0+"),
        ]),
        F("authorized_operations", "int32", "3+", default=-2147483648),
    ]),
])

DELETE_GROUPS_REQUEST = Message(42, "request", "DeleteGroupsRequest", valid="0-2", flexible="2+", fields=[
    F("groups_names", "[]string", "0+"),
])

DELETE_GROUPS_RESPONSE = Message(42, "response", "DeleteGroupsResponse", valid="0-2", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("results", "[]DeletableGroupResult", "0+", fields=[
        F("group_id", "string", "0+"),
        F("error_code", "int16", "0+"),
    ]),
])

OFFSET_DELETE_REQUEST = Message(47, "request", "OffsetDeleteRequest", valid="0", flexible="none", fields=[
    F("group_id", "string", "0+"),
    F("topics", "[]OffsetDeleteRequestTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]OffsetDeleteRequestPartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
        ]),
    ]),
])

OFFSET_DELETE_RESPONSE = Message(47, "response", "OffsetDeleteResponse", valid="0", flexible="none", fields=[
    F("error_code", "int16", "0+"),
    F("throttle_time_ms", "int32", "0+", ignorable=True),
    F("topics", "[]OffsetDeleteResponseTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]OffsetDeleteResponsePartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
        ]),
    ]),
])
