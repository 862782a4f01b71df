"""OffsetForLeaderEpoch (key 23), versions 0-4: the end offset of a leader epoch, which
consumers use to detect log truncation after a leader change (KIP-320).

v1 returns the leader epoch, v2 adds the caller's current leader epoch (fencing) and
throttle time, v3 the replica id (-1 consumer, -2 debug), v4 flexible.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(23, "request", "OffsetForLeaderEpochRequest", valid="0-4", flexible="4+", fields=[
    F("replica_id", "int32", "3+", default=-2, ignorable=True),
    F("topics", "[]OffsetForLeaderTopic", "0+", fields=[
        F("topic", "string", "0+"),
        F("partitions", "[]OffsetForLeaderPartition", "0+", fields=[
            F("partition", "int32", "0+"),
            F("current_leader_epoch", "int32", "2+", default=-1, ignorable=True),
            F("leader_epoch", "int32", "0+"),
        ]),
    ]),
])

RESPONSE = Message(23, "response", "OffsetForLeaderEpochResponse", valid="0-4", flexible="4+", fields=[
    F("throttle_time_ms", "int32", "2+", ignorable=True),
    F("topics", "[]OffsetForLeaderTopicResult", "0+", fields=[
        F("topic", "string", "0+"),
        F("partitions", "[]EpochEndOffset", "0+", fields=[
            F("error_code", "int16", "0+"),
            F("partition", "int32", "0+"),
            F("leader_epoch", "int32", "1+", default=-1, ignorable=True),
            F("end_offset", "int64", "0+", default=-1),
        ]),
    ]),
])
