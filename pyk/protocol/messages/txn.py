"""Transactions (KIP-98): AddPartitionsToTxn (24) 0-5, AddOffsetsToTxn (25) 0-4, EndTxn (26) 0-4,
WriteTxnMarkers (27) 0-1, TxnOffsetCommit (28) 0-4, DescribeProducers (61) 0,
DescribeTransactions (65) 0, ListTransactions (66) 0-1.

From Kafka's JSON definitions (clients/src/main/resources/common/message/*.json).  Two shapes
to note: AddPartitionsToTxn v4+ is the broker-side batch form (many transactional ids per
request, `verify_only`, a top-level error), v0-v3 the client form with one id; EndTxn stops at
v4 because v5 (KIP-890 part 2, an epoch bump per transaction) is unstable in Kafka's own spec.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

_TOPIC = [
    F("name", "string", "0+"),
    F("partitions", "[]int32", "0+"),
]

_TOPIC_RESULT = [
    F("name", "string", "0+"),
    F("results_by_partition", "[]AddPartitionsToTxnPartitionResult", "0+", fields=[
        F("partition_index", "int32", "0+"),
        F("partition_error_code", "int16", "0+"),
    ]),
]

ADD_PARTITIONS_TO_TXN_REQUEST = Message(24, "request", "AddPartitionsToTxnRequest", valid="0-5", flexible="3+", fields=[
    F("transactions", "[]AddPartitionsToTxnTransaction", "4+", fields=[
        F("transactional_id", "string", "4+"),
        F("producer_id", "int64", "4+"),
        F("producer_epoch", "int16", "4+"),
        F("verify_only", "bool", "4+", default=False),
        F("topics", "[]AddPartitionsToTxnTopic", "4+", fields=_TOPIC),
    ]),
    F("v3_and_below_transactional_id", "string", "0-3"),
    F("v3_and_below_producer_id", "int64", "0-3"),
    F("v3_and_below_producer_epoch", "int16", "0-3"),
    F("v3_and_below_topics", "[]AddPartitionsToTxnTopic", "0-3", fields=_TOPIC),
])

ADD_PARTITIONS_TO_TXN_RESPONSE = Message(24, "response", "AddPartitionsToTxnResponse", valid="0-5", flexible="3+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "4+", ignorable=True),
    F("results_by_transaction", "[]AddPartitionsToTxnResult", "4+", fields=[
        F("transactional_id", "string", "4+"),
        F("topic_results", "[]AddPartitionsToTxnTopicResult", "4+", fields=_TOPIC_RESULT),
    ]),
    F("results_by_topic_v3_and_below", "[]AddPartitionsToTxnTopicResult", "0-3", fields=_TOPIC_RESULT),
])

ADD_OFFSETS_TO_TXN_REQUEST = Message(25, "request", "AddOffsetsToTxnRequest", valid="0-4", flexible="3+", fields=[
    F("transactional_id", "string", "0+"),
    F("producer_id", "int64", "0+"),
    F("producer_epoch", "int16", "0+"),
    F("group_id", "string", "0+"),
])

ADD_OFFSETS_TO_TXN_RESPONSE = Message(25, "response", "AddOffsetsToTxnResponse", valid="0-4", flexible="3+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "0+"),
])

END_TXN_REQUEST = Message(26, "request", "EndTxnRequest", valid="0-4", flexible="3+", fields=[
    F("transactional_id", "string", "0+"),
    F("producer_id", "int64", "0+"),
    F("producer_epoch", "int16", "0+"),
    F("committed", "bool", "0+"),
])

END_TXN_RESPONSE = Message(26, "response", "EndTxnResponse", valid="0-4", flexible="3+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "0+"),
])

WRITE_TXN_MARKERS_REQUEST = Message(27, "request", "WriteTxnMarkersRequest", valid="0-1", flexible="1+", fields=[
    F("markers", "[]WritableTxnMarker", "0+", fields=[
        F("producer_id", "int64", "0+"),
        F("producer_epoch", "int16", "0+"),
        F("transaction_result", "bool", "0+"),  # true: commit
        F("topics", "[]WritableTxnMarkerTopic", "0+", fields=[
            F("name", "string", "0+"),
            F("partition_indexes", "[]int32", "0+"),
        ]),
        F("coordinator_epoch", "int32", "0+"),
    ]),
])

WRITE_TXN_MARKERS_RESPONSE = Message(27, "response", "WriteTxnMarkersResponse", valid="0-1", flexible="1+", fields=[
    F("markers", "[]WritableTxnMarkerResult", "0+", fields=[
        F("producer_id", "int64", "0+"),
        F("topics", "[]WritableTxnMarkerTopicResult", "0+", fields=[
            F("name", "string", "0+"),
            F("partitions", "[]WritableTxnMarkerPartitionResult", "0+", fields=[
                F("partition_index", "int32", "0+"),
                F("error_code", "int16", "0+"),
            ]),
        ]),
    ]),
])

TXN_OFFSET_COMMIT_REQUEST = Message(28, "request", "TxnOffsetCommitRequest", valid="0-4", flexible="3+", fields=[
    F("transactional_id", "string", "0+"),
    F("group_id", "string", "0+"),
    F("producer_id", "int64", "0+"),
    F("producer_epoch", "int16", "0+"),
    F("generation_id", "int32", "3+", default=-1),
    F("member_id", "string", "3+", default=""),
    F("group_instance_id", "string", "3+", nullable="3+", default=None),
    F("topics", "[]TxnOffsetCommitRequestTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]TxnOffsetCommitRequestPartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("committed_offset", "int64", "0+"),
            F("committed_leader_epoch", "int32", "2+", default=-1, ignorable=True),
            F("committed_metadata", "string", "0+", nullable="0+"),
        ]),
    ]),
])

TXN_OFFSET_COMMIT_RESPONSE = Message(28, "response", "TxnOffsetCommitResponse", valid="0-4", flexible="3+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("topics", "[]TxnOffsetCommitResponseTopic", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]TxnOffsetCommitResponsePartition", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
        ]),
    ]),
])

DESCRIBE_PRODUCERS_REQUEST = Message(61, "request", "DescribeProducersRequest", valid="0", flexible="0+", fields=[
    F("topics", "[]TopicRequest", "0+", fields=[
        F("name", "string", "0+"),
        F("partition_indexes", "[]int32", "0+"),
    ]),
])

DESCRIBE_PRODUCERS_RESPONSE = Message(61, "response", "DescribeProducersResponse", valid="0", flexible="0+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("topics", "[]TopicResponse", "0+", fields=[
        F("name", "string", "0+"),
        F("partitions", "[]PartitionResponse", "0+", fields=[
            F("partition_index", "int32", "0+"),
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
            F("active_producers", "[]ProducerState", "0+", fields=[
                F("producer_id", "int64", "0+"),
                F("producer_epoch", "int32", "0+"),
                F("last_sequence", "int32", "0+", default=-1),
                F("last_timestamp", "int64", "0+", default=-1),
                F("coordinator_epoch", "int32", "0+"),
                F("current_txn_start_offset", "int64", "0+", default=-1),
            ]),
        ]),
    ]),
])

DESCRIBE_TRANSACTIONS_REQUEST = Message(65, "request", "DescribeTransactionsRequest", valid="0", flexible="0+", fields=[
    F("transactional_ids", "[]string", "0+"),
])

DESCRIBE_TRANSACTIONS_RESPONSE = Message(65, "response", "DescribeTransactionsResponse", valid="0", flexible="0+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("transaction_states", "[]TransactionState", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("transactional_id", "string", "0+"),
        F("transaction_state", "string", "0+"),
        F("transaction_timeout_ms", "int32", "0+"),
        F("transaction_start_time_ms", "int64", "0+"),
        F("producer_id", "int64", "0+"),
        F("producer_epoch", "int16", "0+"),
        F("topics", "[]TopicData", "0+", fields=[
            F("topic", "string", "0+"),
            F("partitions", "[]int32", "0+"),
        ]),
    ]),
])

LIST_TRANSACTIONS_REQUEST = Message(66, "request", "ListTransactionsRequest", valid="0-1", flexible="0+", fields=[
    F("state_filters", "[]string", "0+"),
    F("producer_id_filters", "[]int64", "0+"),
    F("duration_filter", "int64", "1+", default=-1),
])

LIST_TRANSACTIONS_RESPONSE = Message(66, "response", "ListTransactionsResponse", valid="0-1", flexible="0+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "0+"),
    F("unknown_state_filters", "[]string", "0+"),
    F("transaction_states", "[]TransactionState", "0+", fields=[
        F("transactional_id", "string", "0+"),
        F("producer_id", "int64", "0+"),
        F("transaction_state", "string", "0+"),
    ]),
])
