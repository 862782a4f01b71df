"""Client quota APIs (KIP-546), from Kafka's JSON message definitions.

* DescribeClientQuotas (key 48), versions 0-1 (flexible 1+): the quotas of the entities matching
  a filter; each component names an entity type ("user", "client-id", "ip") and a match type
  (0 exact name, 1 the default entity, 2 any specified name).
* AlterClientQuotas (key 49), versions 0-1 (flexible 1+): set or remove quota keys of entities
  (an entity name null is the type's default entity); `validate_only` checks without storing.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

_ENTITY = [F("entity_type", "string", "0+"), F("entity_name", "string", "0+", nullable="0+")]

DESCRIBE_CLIENT_QUOTAS_REQUEST = Message(48, "request", "DescribeClientQuotasRequest", valid="0-1", flexible="1+",
                                         fields=[
    F("components", "[]ComponentData", "0+", fields=[
        F("entity_type", "string", "0+"),
        F("match_type", "int8", "0+"),
        F("match", "string", "0+", nullable="0+"),
    ]),
    F("strict", "bool", "0+"),
])

DESCRIBE_CLIENT_QUOTAS_RESPONSE = Message(48, "response", "DescribeClientQuotasResponse", valid="0-1", flexible="1+",
                                          fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "0+"),
    F("error_message", "string", "0+", nullable="0+", default=None),
    F("entries", "[]EntryData", "0+", nullable="0+", fields=[
        F("entity", "[]EntityData", "0+", fields=_ENTITY),
        F("values", "[]ValueData", "0+", fields=[F("key", "string", "0+"), F("value", "float64", "0+")]),
    ]),
])

ALTER_CLIENT_QUOTAS_REQUEST = Message(49, "request", "AlterClientQuotasRequest", valid="0-1", flexible="1+", fields=[
    F("entries", "[]EntryData", "0+", fields=[
        F("entity", "[]EntityData", "0+", fields=_ENTITY),
        F("ops", "[]OpData", "0+", fields=[
            F("key", "string", "0+"),
            F("value", "float64", "0+"),
            F("remove", "bool", "0+"),
        ]),
    ]),
    F("validate_only", "bool", "0+"),
])

ALTER_CLIENT_QUOTAS_RESPONSE = Message(49, "response", "AlterClientQuotasResponse", valid="0-1", flexible="1+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("entries", "[]EntryData", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
        F("entity", "[]EntityData", "0+", fields=_ENTITY),
    ]),
])
