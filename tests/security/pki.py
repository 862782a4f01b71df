"""Test PKI and token keys, made with the `cryptography` library: a CA, a broker keystore as Kafka's
PEM keystores are written (encrypted private key + certificate chain in one file), client
certificates, a second CA nobody trusts, and an RSA key published as a JWKS for OAUTHBEARER."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KEY_PASSWORD = "keystore-secret"


def _name(common_name: str, org: str = "pyk-tests") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    def issue(self, common_name: str, server: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1)))
        if server:
            import ipaddress

            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())

    def write_cert(self, path: Path) -> str:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)


def write_pem(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, password: str | None) -> str:
    """Kafka's PEM keystore: the private key (PKCS#8, encrypted when a password is given), then the cert."""
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
                     + cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@dataclass
class Pki:
    """Files under `root` (paths as strings, ready for config values)."""

    ca: str  # the CA the broker's and clients' certificates come from
    rogue_ca: str  # a CA that signed nothing here
    keystore: str  # the broker's key (encrypted with KEY_PASSWORD) + certificate
    client_cert: str  # CN=alice
    client_key: str
    rogue_client_cert: str  # CN=mallory, from the rogue CA
    rogue_client_key: str
    jwks: str  # file:// URL of the JWKS
    jwt_key: rsa.RSAPrivateKey
    other_jwt_key: rsa.RSAPrivateKey  # not in the JWKS

    @classmethod
    def create(cls, root: Path) -> Pki:
        root.mkdir(parents=True, exist_ok=True)
        ca, rogue = Authority.create("pyk-test-ca"), Authority.create("rogue-ca")
        server_key, server_cert = ca.issue("localhost", server=True)
        client_key, client_cert = ca.issue("alice", server=False)
        rogue_key, rogue_cert = rogue.issue("mallory", server=False)
        jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(jwt_key.public_key()))
        jwk.update(kid="k1", use="sig", alg="RS256")
        (root / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
        return cls(
            ca=ca.write_cert(root / "ca.pem"), rogue_ca=rogue.write_cert(root / "rogue-ca.pem"),
            keystore=write_pem(root / "broker.keystore.pem", server_key, server_cert, KEY_PASSWORD),
            client_cert=str(_write(root / "alice.pem", client_cert.public_bytes(serialization.Encoding.PEM))),
            client_key=write_pem(root / "alice.key", client_key, client_cert, None),
            rogue_client_cert=str(_write(root / "mallory.pem", rogue_cert.public_bytes(serialization.Encoding.PEM))),
            rogue_client_key=write_pem(root / "mallory.key", rogue_key, rogue_cert, None),
            jwks=(root / "jwks.json").as_uri(), jwt_key=jwt_key,
            other_jwt_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )

    def token(self, subject: str, lifetime_s: float = 300, key: rsa.RSAPrivateKey | None = None,
              audience: str = "pyk") -> tuple[str, float]:
        """A signed JWT for `subject` and its expiry (epoch seconds), as confluent-kafka's oauth_cb returns them."""
        expiry = time.time() + lifetime_s
        claims = {"sub": subject, "exp": int(expiry), "iat": int(time.time()), "iss": "pyk-tests", "aud": audience}
        return jwt.encode(claims, key or self.jwt_key, algorithm="RS256", headers={"kid": "k1"}), expiry


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
