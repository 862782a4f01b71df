"""Fetch (key 1), versions 4-12: consumer reads, with incremental fetch sessions (KIP-227).

v7 adds sessions (session_id/session_epoch, forgotten_topics_data), v11 the rack id and
preferred read replica (KIP-392), v12 flexible encoding with the diverging epoch, current
leader and snapshot id as tagged fields.  A response `records` value may be a sendable file
slice: the encoder writes its length and hands it to the connection as its own part.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(1, "request", "FetchRequest", valid="4-12", flexible="12+", fields=[
    F("cluster_id", "string", "12+", nullable="12+", default=None, tagged="12+", tag=0, ignorable=True),
    F("replica_id", "int32", "0-14", default=-1),
    F("max_wait_ms", "int32", "0+"),
    F("min_bytes", "int32", "0+"),
    F("max_bytes", "int32", "3+", default=0x7FFFFFFF, ignorable=True),
    F("isolation_level", "int8", "4+", default=0, ignorable=True),
    F("session_id", "int32", "7+", default=0, ignorable=True),
    F("session_epoch", "int32", "7+", default=-1, ignorable=True),
    F("topics", "[]FetchTopic", "0+", fields=[
        F("topic", "string", "0-12", ignorable=True),
        F("partitions", "[]FetchPartition", "0+", fields=[
            F("partition", "int32", "0+"),
            F("current_leader_epoch", "int32", "9+", default=-1, ignorable=True),
            F("fetch_offset", "int64", "0+"),
            F("last_fetched_epoch", "int32", "12+", default=-1),
            F("log_start_offset", "int64", "5+", default=-1, ignorable=True),
            F("partition_max_bytes", "int32", "0+"),
        ]),
    ]),
    F("forgotten_topics_data", "[]ForgottenTopic", "7+", fields=[
        F("topic", "string", "7-12", ignorable=True),
        F("partitions", "[]int32", "7+"),
    ]),
    F("rack_id", "string", "11+", default="", ignorable=True),
])

RESPONSE = Message(1, "response", "FetchResponse", valid="4-12", flexible="12+", fields=[
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("error_code", "int16", "7+", ignorable=True),
    F("session_id", "int32", "7+", default=0),
    F("responses", "[]FetchableTopicResponse", "0+", fields=[
        F("topic", "string", "0-12", ignorable=True),
        F("partitions", "[]PartitionData", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
            F("high_watermark", "int64", "0+"),
            F("last_stable_offset", "int64", "4+", default=-1, ignorable=True),
            F("log_start_offset", "int64", "5+", default=-1, ignorable=True),
            F("diverging_epoch", "EpochEndOffset", "12+", tagged="12+", tag=0, fields=[
                F("epoch", "int32", "12+", default=-1),
                F("end_offset", "int64", "12+", default=-1),
            ]),
            F("current_leader", "LeaderIdAndEpoch", "12+", tagged="12+", tag=1, fields=[
                F("leader_id", "int32", "12+", default=-1),
                F("leader_epoch", "int32", "12+", default=-1),
            ]),
            F("snapshot_id", "SnapshotId", "12+", tagged="12+", tag=2, fields=[
                F("end_offset", "int64", "0+", default=-1),
                F("epoch", "int32", "0+", default=-1),
            ]),
            F("aborted_transactions", "[]AbortedTransaction", "4+", nullable="4+", ignorable=True, fields=[
                F("producer_id", "int64", "4+"),
                F("first_offset", "int64", "4+"),
            ]),
            F("preferred_read_replica", "int32", "11+", default=-1),
            F("records", "records", "0+", nullable="0+"),
        ]),
    ]),
])
