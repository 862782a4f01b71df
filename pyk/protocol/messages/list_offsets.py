"""ListOffsets (key 2), versions 0-10: offset lookup by timestamp.

Timestamp -1 asks for the latest offset (log end / last stable), -2 the earliest (log start),
-3 (v7, KIP-734) the offset of the record with the largest timestamp, -4 (v8, KIP-405) the
earliest offset in local storage, -5 (v9, KIP-1005) the last offset in remote storage; v10
(KIP-1075) adds a timeout for lookups in remote storage.  v0 asks for up to
max_num_offsets offsets and answers an array of them (old_style_offsets; sarama, hence Burrow,
still uses it); v1 answers one offset and its timestamp; v2 adds the isolation level, v4 leader
epochs, v6 flexible.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(2, "request", "ListOffsetsRequest", valid="0-10", flexible="6+", fields=[
    F("replica_id", "int32", "0+"),
    F("isolation_level", "int8", "2+"),
    F("topics", "[]ListOffsetsTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]ListOffsetsPartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("current_leader_epoch", "int32", "4+", default=-1, ignorable=True),
            F("timestamp", "int64", "0+"),
            F("max_num_offsets", "int32", "0", default=1),
        ]),
    ]),
    F("timeout_ms", "int32", "10+", default=0, ignorable=True),
])

RESPONSE = Message(2, "response", "ListOffsetsResponse", valid="0-10", flexible="6+", fields=[
    F("throttle_time_ms", "int32", "2+", ignorable=True),
    F("topics", "[]ListOffsetsTopicResponse", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]ListOffsetsPartitionResponse", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
            F("old_style_offsets", "[]int64", "0"),
            F("timestamp", "int64", "1+", default=-1),
            F("offset", "int64", "1+", default=-1),
            F("leader_epoch", "int32", "4+", default=-1),
        ]),
    ]),
])
