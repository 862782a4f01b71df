"""DescribeLogDirs (key 35), versions 0-4 (KIP-113): each log directory of a broker with the
size of every partition in it; v3 adds a top-level error code, v4 (KIP-827) the directory's
total and usable bytes.  Flexible from version 2.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

DESCRIBE_LOG_DIRS_REQUEST = Message(35, "request", "DescribeLogDirsRequest", valid="0-4", flexible="2+", fields=[
    F("topics", "[]DescribableLogDirTopic", "0+", nullable="0+", fields=[  # null: every partition
        F("topic", "string", "0+"),
        F("partitions", "[]int32", "0+"),
    ]),
])

DESCRIBE_LOG_DIRS_RESPONSE = Message(35, "response", "DescribeLogDirsResponse", valid="0-4", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "3+", ignorable=True),
    F("results", "[]DescribeLogDirsResult", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("log_dir", "string", "0+"),
        F("topics", "[]DescribeLogDirsTopic", "0+", fields=[
            F("name", "string", "0+"),
            F("partitions", "[]DescribeLogDirsPartition", "0+", fields=[
                F("partition_index", "int32", "0+"),
                F("partition_size", "int64", "0+"),
                F("offset_lag", "int64", "0+"),
                F("is_future_key", "bool", "0+"),
            ]),
        ]),
        F("total_bytes", "int64", "4+", default=-1, ignorable=True),
        F("usable_bytes", "int64", "4+", default=-1, ignorable=True),
    ]),
])
