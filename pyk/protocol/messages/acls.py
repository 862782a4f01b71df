"""ACLs: DescribeAcls (29) 1-3, CreateAcls (30) 1-3, DeleteAcls (31) 1-3.

Resource types, pattern types, operations and permission types are Kafka's `AclResourceType`,
`PatternType`, `AclOperation` and `AclPermissionType` codes (pattern type 3 is LITERAL).
Version 0 (no pattern type) is gone from Kafka 4, as here.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

DESCRIBE_ACLS_REQUEST = Message(29, "request", "DescribeAclsRequest", valid="1-3", flexible="2+", fields=[
    F("resource_type_filter", "int8", "0+"),
    F("resource_name_filter", "string", "0+", nullable="0+"),
    F("pattern_type_filter", "int8", "1+", default=3),
    F("principal_filter", "string", "0+", nullable="0+"),
    F("host_filter", "string", "0+", nullable="0+"),
    F("operation", "int8", "0+"),
    F("permission_type", "int8", "0+"),
])

DESCRIBE_ACLS_RESPONSE = Message(29, "response", "DescribeAclsResponse", valid="1-3", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("error_code", "int16", "0+"),
    F("error_message", "string", "0+", nullable="0+", default=None),
    F("resources", "[]DescribeAclsResource", "0+", fields=[
        F("resource_type", "int8", "0+"),
        F("resource_name", "string", "0+"),
        F("pattern_type", "int8", "1+", default=3),
        F("acls", "[]AclDescription", "0+", fields=[
            F("principal", "string", "0+"),
            F("host", "string", "0+"),
            F("operation", "int8", "0+"),
            F("permission_type", "int8", "0+"),
        ]),
    ]),
])

CREATE_ACLS_REQUEST = Message(30, "request", "CreateAclsRequest", valid="1-3", flexible="2+", fields=[
    F("creations", "[]AclCreation", "0+", fields=[
        F("resource_type", "int8", "0+"),
        F("resource_name", "string", "0+"),
        F("resource_pattern_type", "int8", "1+", default=3),
        F("principal", "string", "0+"),
        F("host", "string", "0+"),
        F("operation", "int8", "0+"),
        F("permission_type", "int8", "0+"),
    ]),
])

CREATE_ACLS_RESPONSE = Message(30, "response", "CreateAclsResponse", valid="1-3", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("results", "[]AclCreationResult", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
    ]),
])

DELETE_ACLS_REQUEST = Message(31, "request", "DeleteAclsRequest", valid="1-3", flexible="2+", fields=[
    F("filters", "[]DeleteAclsFilter", "0+", fields=[
        F("resource_type_filter", "int8", "0+"),
        F("resource_name_filter", "string", "0+", nullable="0+"),
        F("pattern_type_filter", "int8", "1+", default=3),
        F("principal_filter", "string", "0+", nullable="0+"),
        F("host_filter", "string", "0+", nullable="0+"),
        F("operation", "int8", "0+"),
        F("permission_type", "int8", "0+"),
    ]),
])

DELETE_ACLS_RESPONSE = Message(31, "response", "DeleteAclsResponse", valid="1-3", flexible="2+", fields=[
    F("throttle_time_ms", "int32", "0+"),
    F("filter_results", "[]DeleteAclsFilterResult", "0+", fields=[
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
        F("matching_acls", "[]DeleteAclsMatchingAcl", "0+", fields=[
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
            F("resource_type", "int8", "0+"),
            F("resource_name", "string", "0+"),
            F("pattern_type", "int8", "1+", default=3),
            F("principal", "string", "0+"),
            F("host", "string", "0+"),
            F("operation", "int8", "0+"),
            F("permission_type", "int8", "0+"),
        ]),
    ]),
])
