"""SASL and SCRAM credential APIs, from Kafka's JSON message definitions.

* SaslHandshake (key 17), version 1: the client names a mechanism; the broker lists its enabled
  ones.  Version 0 (tokens sent raw, without Kafka framing, after the handshake) is not served:
  every client since Kafka 1.0 uses version 1 with SaslAuthenticate.
* SaslAuthenticate (key 36), versions 0-2 (flexible 2+): one SASL token each way; version 1
  adds the session lifetime for re-authentication (KIP-368).
* DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51), version 0,
  flexible (KIP-554): the client salts the password itself; the broker never sees it.
"""

from pyk.protocol.spec import Field as F
from pyk.protocol.spec import Message

SASL_HANDSHAKE_REQUEST = Message(17, "request", "SaslHandshakeRequest", valid="1", flexible="none", fields=[
    F("mechanism", "string", "0+"),
])

SASL_HANDSHAKE_RESPONSE = Message(17, "response", "SaslHandshakeResponse", valid="1", flexible="none", fields=[
    F("error_code", "int16", "0+"),
    F("mechanisms", "[]string", "0+"),
])

SASL_AUTHENTICATE_REQUEST = Message(36, "request", "SaslAuthenticateRequest", valid="0-2", flexible="2+", fields=[
    F("auth_bytes", "bytes", "0+"),
])

SASL_AUTHENTICATE_RESPONSE = Message(36, "response", "SaslAuthenticateResponse", valid="0-2", flexible="2+", fields=[
    F("error_code", "int16", "0+"),
    F("error_message", "string", "0+", nullable="0+", default=None),
    F("auth_bytes", "bytes", "0+"),
    F("session_lifetime_ms", "int64", "1+", default=0),
])

DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST = Message(
    50, "request", "DescribeUserScramCredentialsRequest", valid="0", flexible="0+", fields=[
        F("users", "[]UserName", "0+", nullable="0+", fields=[F("name", "string", "0+")]),
    ])

DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE = Message(
    50, "response", "DescribeUserScramCredentialsResponse", valid="0", flexible="0+", fields=[
        F("throttle_time_ms", "int32", "0+"),
        F("error_code", "int16", "0+"),
        F("error_message", "string", "0+", nullable="0+", default=None),
        F("results", "[]DescribeUserScramCredentialsResult", "0+", fields=[
            F("user", "string", "0+"),
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
            F("credential_infos", "[]CredentialInfo", "0+", fields=[
                F("mechanism", "int8", "0+"),
                F("iterations", "int32", "0+"),
            ]),
        ]),
    ])

ALTER_USER_SCRAM_CREDENTIALS_REQUEST = Message(
    51, "request", "AlterUserScramCredentialsRequest", valid="0", flexible="0+", fields=[
        F("deletions", "[]ScramCredentialDeletion", "0+", fields=[
            F("name", "string", "0+"),
            F("mechanism", "int8", "0+"),
        ]),
        F("upsertions", "[]ScramCredentialUpsertion", "0+", fields=[
            F("name", "string", "0+"),
            F("mechanism", "int8", "0+"),
            F("iterations", "int32", "0+"),
            F("salt", "bytes", "0+"),
            F("salted_password", "bytes", "0+"),
        ]),
    ])

ALTER_USER_SCRAM_CREDENTIALS_RESPONSE = Message(
    51, "response", "AlterUserScramCredentialsResponse", valid="0", flexible="0+", fields=[
        F("throttle_time_ms", "int32", "0+"),
        F("results", "[]AlterUserScramCredentialsResult", "0+", fields=[
            F("user", "string", "0+"),
            F("error_code", "int16", "0+"),
            F("error_message", "string", "0+", nullable="0+", default=None),
        ]),
    ])
