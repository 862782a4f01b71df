"""Configs: DescribeConfigs (32) 0-4, AlterConfigs (33) 0-2, IncrementalAlterConfigs (44) 0-1.

Resource types are Kafka's ConfigResource.Type codes (2 topic, 4 broker, 8 broker logger);
config sources and types are DescribeConfigsResponse's enumerations.  Nullable error
messages default to null (see topics.py).
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

DESCRIBE_CONFIGS_REQUEST = Message(32, "request", "DescribeConfigsRequest", valid="0-4", flexible="4+", fields=[
    F("resources", "[]DescribeConfigsResource", "0+", fields=[
        F("resource_type", "int8", "0+"),
        F("resource_name", "string", "0+"),
        F("configuration_keys", "[]string", "0+", nullable="0+"),  # null: every key
    ]),
    F("include_synonyms", "bool", "1+", default=False),
    F("include_documentation", "bool", "3+", default=False),
])

DESCRIBE_CONFIGS_RESPONSE = Message(32, "response", "DescribeConfigsResponse", valid="0-4", flexible="4+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("results", "[]DescribeConfigsResult", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
        F("resource_type", "int8", "0+"),
        F("resource_name", "string", "0+"),
        F("configs", "[]DescribeConfigsResourceResult", "0+", fields=[
            F("name", "string", "0+"),
            F("value", "string", "0+", nullable="0+"),
            F("read_only", "bool", "0+"),
            F("is_default", "bool", "0"),
            F("config_source", "int8", "1+", default=-1, ignorable=True),
            F("is_sensitive", "bool", "0+"),
            F("synonyms", "[]DescribeConfigsSynonym", "1+", ignorable=True, fields=[
                F("name", "string", "1+"),
                F("value", "string", "1+", nullable="0+"),
                F("source", "int8", "1+"),
            ]),
            F("config_type", "int8", "3+", default=0, ignorable=True),
            F("documentation", "string", "3+", nullable="0+", default=None, ignorable=True),
        ]),
    ]),
])

ALTER_CONFIGS_REQUEST = Message(33, "request", "AlterConfigsRequest", valid="0-2", flexible="2+", fields=[
    F("resources", "[]AlterConfigsResource", "0+", fields=[
        F("resource_type", "int8", "0+"),
        F("resource_name", "string", "0+"),
        F("configs", "[]AlterableConfig", "0+", fields=[
            F("name", "string", "0+"),
            F("value", "string", "0+", nullable="0+"),
        ]),
    ]),
    F("validate_only", "bool", "0+"),
])

ALTER_CONFIGS_RESPONSE = Message(33, "response", "AlterConfigsResponse", valid="0-2", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("responses", "[]AlterConfigsResourceResponse", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
        F("resource_type", "int8", "0+"),
        F("resource_name", "string", "0+"),
    ]),
])

INCREMENTAL_ALTER_CONFIGS_REQUEST = Message(
    44, "request", "IncrementalAlterConfigsRequest", valid="0-1", flexible="1+", fields=[
        F("resources", "[]AlterConfigsResource", "0+", fields=[
            F("resource_type", "int8", "0+"),
            F("resource_name", "string", "0+"),
            F("configs", "[]AlterableConfig", "0+", fields=[
                F("name", "string", "0+"),
                F("config_operation", "int8", "0+"),  # 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT
                F("value", "string", "0+", nullable="0+"),
            ]),
        ]),
        F("validate_only", "bool", "0+"),
    ])

INCREMENTAL_ALTER_CONFIGS_RESPONSE = Message(
    44, "response", "IncrementalAlterConfigsResponse", valid="0-1", flexible="1+", fields=[
        F("throttle_time_ms", "int32", "0+"),
        F("responses", "[]AlterConfigsResourceResponse", "0+", fields=[
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
            F("resource_type", "int8", "0+"),
            F("resource_name", "string", "0+"),
        ]),
    ])
