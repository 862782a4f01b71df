"""SASL/OAUTHBEARER (RFC 7628, KIP-255/KIP-768): a signed JWT validated against configured keys.

The keys are a JWKS named by Kafka's `sasl.oauthbearer.jwks.endpoint.url`, as a file:// URL (the
broker reads it at start-up; an https JWKS endpoint is not fetched yet).  A token must carry a
signature by one of those keys, an unexpired `exp`, and, when configured, one of
`sasl.oauthbearer.expected.audience` and the `sasl.oauthbearer.expected.issuer`; the claim
`sasl.oauthbearer.sub.claim.name` names the principal.  Validation is PyJWT's.  The token's
expiry bounds the session (KIP-368): the client must re-authenticate before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import jwt

from pyk.config import ConfigError, ServerConfig
from pyk.server.security.mechanism import AuthenticationFailed
from pyk.server.security.settings import setting

_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


@dataclass(frozen=True)
class OAuthValidator:
    """What a listener checks a bearer token against."""

    keys: jwt.PyJWKSet
    audience: list[str] | None
    issuer: str | None
    sub_claim: str
    leeway_s: int

    @classmethod
    def build(cls, config: ServerConfig, listener: str) -> OAuthValidator:
        key = "sasl.oauthbearer.jwks.endpoint.url"
        url = setting(config, listener, key, "OAUTHBEARER")
        if not url:
            raise ConfigError(f"OAUTHBEARER is enabled but {key} is not set (file:///path/to/jwks.json)")
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ConfigError(f"{key}={url}: pyk reads the JWKS from a file:// URL only")
        try:
            with open(unquote(parsed.path), encoding="utf-8") as fh:
                keys = jwt.PyJWKSet.from_dict(json.load(fh))
        except (OSError, ValueError, jwt.PyJWKSetError) as exc:
            raise ConfigError(f"cannot load the JWKS of {key}={url}: {exc}") from None
        return cls(keys, setting(config, listener, "sasl.oauthbearer.expected.audience", "OAUTHBEARER"),
                   setting(config, listener, "sasl.oauthbearer.expected.issuer", "OAUTHBEARER"),
                   setting(config, listener, "sasl.oauthbearer.sub.claim.name", "OAUTHBEARER"),
                   setting(config, listener, "sasl.oauthbearer.clock.skew.seconds", "OAUTHBEARER"))

    def validate(self, token: str) -> dict[str, object]:
        """The token's claims; AuthenticationFailed with the reason when it is not acceptable."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            candidates = [k for k in self.keys.keys if kid is None or k.key_id == kid]
            if not candidates:
                raise AuthenticationFailed(f"invalid_token: no configured key has kid {kid!r}")
            claims: dict[str, object] = jwt.decode(
                token, candidates[0], algorithms=_ALGORITHMS, audience=self.audience, issuer=self.issuer,
                leeway=self.leeway_s, options={"require": ["exp"], "verify_aud": self.audience is not None})
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"invalid_token: {exc}") from None
        if not isinstance(claims.get(self.sub_claim), str):
            raise AuthenticationFailed(f"invalid_token: no {self.sub_claim!r} claim naming the principal")
        return claims


class OAuthBearerServer:
    """One OAUTHBEARER exchange: the client's single message `n,[a=authzid],^Aauth=Bearer <jwt>^A...^A^A`."""

    mechanism = "OAUTHBEARER"

    def __init__(self, validator: OAuthValidator) -> None:
        self._validator = validator
        self.complete = False
        self.principal = ""
        self.expires_ms: int | None = None

    def evaluate(self, token: bytes) -> bytes:
        try:
            gs2, _, rest = token.decode("utf-8").partition("\x01")
            fields = dict(kv.split("=", 1) for kv in rest.split("\x01") if kv)
        except ValueError:
            raise AuthenticationFailed("invalid OAUTHBEARER client message") from None
        scheme, _, bearer = fields.get("auth", "").partition(" ")
        if not gs2.startswith(("n,", "y,")) or scheme.lower() != "bearer" or not bearer:
            raise AuthenticationFailed("invalid OAUTHBEARER client message: expected auth=Bearer <token>")
        claims = self._validator.validate(bearer.strip())
        self.principal = "User:" + str(claims[self._validator.sub_claim])
        self.expires_ms = int(claims["exp"]) * 1000  # type: ignore[call-overload]
        self.complete = True
        return b""
