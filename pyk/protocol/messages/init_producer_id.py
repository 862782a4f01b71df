"""InitProducerId (key 22), versions 0-4: a producer id and epoch for idempotent and
transactional producers.  v3 (KIP-360) lets a producer pass its current id/epoch to bump
the epoch instead of getting a new id.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(22, "request", "InitProducerIdRequest", valid="0-4", flexible="2+", fields=[
    F("transactional_id", "string", "0+", nullable="0+"),
    F("transaction_timeout_ms", "int32", "0+"),
    F("producer_id", "int64", "3+", default=-1),
    F("producer_epoch", "int16", "3+", default=-1),
])

RESPONSE = Message(22, "response", "InitProducerIdResponse", valid="0-4", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+", ignorable=True),
    F("error_code", "int16", "0+"),
    F("producer_id", "int64", "0+", default=-1),
    F("producer_epoch", "int16", "0+"),
])
