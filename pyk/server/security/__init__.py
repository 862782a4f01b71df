"""Listener security: TLS (pyk.server.security.tls), SASL (sasl, scram, oauth) and the principal.

What each listener does is decided once per shard at start-up (listener.py: `ListenerSecurity`), from
Kafka's keys, each of which may be scoped to one listener (`listener.name.<listener>.<key>`, and
for SASL `listener.name.<listener>.<mechanism>.<key>`):

* PLAINTEXT: nothing; the principal is User:ANONYMOUS.
* SSL: a TLS session over the engine's socket (TlsConnection), whose sending goes to the kernel
  after the handshake where it has TLS (ktls); the principal is the client certificate's subject
  (User:CN=...,O=...) when ssl.client.auth asks for one, else ANONYMOUS.
* SASL_PLAINTEXT / SASL_SSL: frames go through a SaslGate first: ApiVersions, SaslHandshake and
  SaslAuthenticate only, until a mechanism authenticated the client; then the dispatcher, with
  the SASL principal on the connection (RequestContext.principal, where an authorizer reads it).

Authentication failures are logged on AUDIT ("pyk.audit"), one line each.  Authorization is
authorizer.py's: Kafka's ACL model, asked by the handlers through ShardServices.
"""
