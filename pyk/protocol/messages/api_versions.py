"""ApiVersions (key 18), versions 0-3: what a client asks first, to learn our version ranges.

Version 3 is flexible and adds the client's software name/version (KIP-511).  Its response
always travels with response header v0 (see header.py), so a client that does not yet know
our range can still read it.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

REQUEST = Message(18, "request", "ApiVersionsRequest", valid="0-3", flexible="3+", fields=[
    F("client_software_name", "string", "3+", ignorable=True),
    F("client_software_version", "string", "3+", ignorable=True),
])

RESPONSE = Message(18, "response", "ApiVersionsResponse", valid="0-3", flexible="3+", fields=[
    F("error_code", "int16", "0+"),
    F("api_keys", "[]ApiVersion", "0+", fields=[
        F("api_key", "int16", "0+"),
        F("min_version", "int16", "0+"),
        F("max_version", "int16", "0+"),
    ]),
    F("throttle_time_ms", "int32", "1+", ignorable=True),
    F("supported_features", "[]SupportedFeatureKey", "3+", tagged="3+", tag=0, ignorable=True, fields=[
        F("name", "string", "3+"),
        F("min_version", "int16", "3+"),
        F("max_version", "int16", "3+"),
    ]),
    F("finalized_features_epoch", "int64", "3+", default=-1, tagged="3+", tag=1, ignorable=True),
    F("finalized_features", "[]FinalizedFeatureKey", "3+", tagged="3+", tag=2, ignorable=True, fields=[
        F("name", "string", "3+"),
        F("max_version_level", "int16", "3+"),
        F("min_version_level", "int16", "3+"),
    ]),
    F("zk_migration_ready", "bool", "3+", default=False, tagged="3+", tag=3, ignorable=True),
])
