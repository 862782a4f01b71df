"""pyk.log: Kafka-style partition logs on local disk (segments, indexes, recovery).

Public face used by the server layer (contract in docs/architecture.md, section "log"):
LogManager (all logs of the process), PartitionLog (one partition: append/read/offsets),
LogConfig (+ TOPIC_CONFIGS, the topic-level key table), LogIO (the manager's storage I/O
threads), and the value types LogAppendInfo, FetchDataInfo and FileSlice.  Requires the compiled pyk._native extension.
"""

from pyk.log.config import TOPIC_CONFIGS, LogConfig
from pyk.log.io import LogIO
from pyk.log.manager import LogManager
from pyk.log.partition_log import FetchDataInfo, LogAppendInfo, PartitionLog
from pyk.log.segment import FileSlice

__all__ = ["TOPIC_CONFIGS", "FetchDataInfo", "FileSlice", "LogAppendInfo", "LogConfig", "LogIO", "LogManager", "PartitionLog"]
