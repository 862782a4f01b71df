"""Produce (key 0), versions 0-9, from Kafka's ProduceRequest/ProduceResponse JSON (3.x).

v0-v2 carry legacy message sets (message formats 0 and 1: no transactional_id, which arrives
in v3 with record batch v2); the log up-converts them to one v2 batch (pyk/log/legacy.py).
The response gains throttle_time_ms in v1 and log_append_time_ms in v2.  Kafka 4.0 dropped
v0-v2 from its JSON; they are kept here because librdkafka <= 2.11 only compresses towards a
broker whose Produce range includes v0 (rdkafka_feature.c).  `records` decodes to a
zero-copy view of the request frame so the log can validate and rewrite the batch in place.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(0, "request", "ProduceRequest", valid="0-9", flexible="9+", fields=[
    F("transactional_id", "string", "3+", nullable="3+", default=None),
    F("acks", "int16", "0+"),
    F("timeout_ms", "int32", "0+"),
    F("topic_data", "[]TopicProduceData", "0+", fields=[
        F("name", "string", "0+"),
        F("partition_data", "[]PartitionProduceData", "0+", fields=[
            F("index", "int32", "0+"),
            F("records", "records", "0+", nullable="0+"),
        ]),
    ]),
])

RESPONSE = Message(0, "response", "ProduceResponse", valid="0-9", flexible="9+", fields=[
    F("responses", "[]TopicProduceResponse", "0+", fields=[
        F("name", "string", "0+"),
        F("partition_responses", "[]PartitionProduceResponse", "0+", fields=[
            F("index", "int32", "0+"),
            F("error_code", "int16", "0+"),
            F("base_offset", "int64", "0+"),
            F("log_append_time_ms", "int64", "2+", default=-1, ignorable=True),
            F("log_start_offset", "int64", "5+", default=-1, ignorable=True),
            F("record_errors", "[]BatchIndexAndErrorMessage", "8+", ignorable=True, fields=[
                F("batch_index", "int32", "8+"),
                F("batch_index_error_message", "string", "8+", nullable="8+", default=None),
            ]),
            F("error_message", "string", "8+", nullable="8+", default=None, ignorable=True),
        ]),
    ]),
    F("throttle_time_ms", "int32", "1+", default=0, ignorable=True),
])
