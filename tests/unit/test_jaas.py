"""JAAS as a Kafka broker reads it (pyk.server.security.jaas): Kafka's grammar, one entry per
sasl.jaas.config key, a file's sections, where the file comes from (the broker key over
KAFKA_OPTS) and which entry a listener's mechanism takes (JaasContext.loadServerContext's order).
The brokers that use them with real clients are in tests/security/test_properties_file.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyk.config import ConfigError, ServerConfig
from pyk.server.security.jaas import LoginModule, login_config_file, parse_entry, parse_file, server_login
from pyk.server.security.plain import PLAIN_LOGIN_MODULE, plain_users

KRB5 = "com.sun.security.auth.module.Krb5LoginModule"
JAAS_FILE = f"""
// users of every listener without a section of its own
KafkaServer {{
    {PLAIN_LOGIN_MODULE} required
    username="admin" password="admin-secret"
    user_admin="admin-secret" user_alice="alice-secret";
    {KRB5} REQUIRED useKeyTab=true keyTab="/etc/security/keytabs/kafka.keytab"
        principal="kafka/broker1@EXAMPLE.COM";  /* GSSAPI's entry */
}};
sasl_ssl.KafkaServer {{ {PLAIN_LOGIN_MODULE} required user_carol='carol-secret'; }};
"""


def test_kafka_grammar() -> None:
    entry = parse_entry(f'{PLAIN_LOGIN_MODULE}  required\n username="ad min" password=\'a\\"b\' /* c */ '
                        'user_x=bare/path // rest of line\n user_y="";', "k")
    assert entry == LoginModule(PLAIN_LOGIN_MODULE, {"username": "ad min", "password": 'a"b', "user_x": "bare/path",
                                                     "user_y": ""})
    sections = parse_file(JAAS_FILE, "f")
    assert list(sections) == ["KafkaServer", "sasl_ssl.KafkaServer"]
    assert [e.name for e in sections["KafkaServer"]] == [PLAIN_LOGIN_MODULE, KRB5]
    assert sections["KafkaServer"][1].options["principal"] == "kafka/broker1@EXAMPLE.COM"
    for text, fragment in [
        (f"{PLAIN_LOGIN_MODULE} required user_a=\"b\"", "expected an option of"),  # no ';'
        (f"{PLAIN_LOGIN_MODULE} mandatory;", "invalid control flag 'mandatory'"),
        (f"{PLAIN_LOGIN_MODULE} required user_a=;", "expected a value for user_a"),
        (f'{PLAIN_LOGIN_MODULE} required user_a="b;', "unterminated quote"),
        (f"{PLAIN_LOGIN_MODULE} required; {KRB5} required;", "contains 2 login modules, should be 1 module"),
        ("", "contains 0 login modules"),
    ]:
        with pytest.raises(ConfigError, match=fragment):
            parse_entry(text, "k")
    with pytest.raises(ConfigError, match="expected a login module class or '}', found the end"):
        parse_file(f"KafkaServer {{ {PLAIN_LOGIN_MODULE} required;", "f")
    with pytest.raises(ConfigError, match="expected ';' after the section KafkaServer"):
        parse_file(f"KafkaServer {{ {PLAIN_LOGIN_MODULE} required; }}", "f")


def _config(tmp_path: Path, **raw: str) -> ServerConfig:
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS_FILE)
    return ServerConfig({"listeners": "SASL_SSL://127.0.0.1:1,SASL_PLAINTEXT://127.0.0.1:2",
                         "java.security.auth.login.config": str(jaas), **raw})


def test_kafka_precedence(tmp_path: Path) -> None:
    """The listener+mechanism key, then the listener's section, then KafkaServer."""
    cfg = _config(tmp_path)
    assert plain_users(cfg, "SASL_SSL") == {"carol": "carol-secret"}
    assert plain_users(cfg, "SASL_PLAINTEXT") == {"admin": "admin-secret", "alice": "alice-secret"}
    assert server_login(cfg, "SASL_PLAINTEXT", "GSSAPI", KRB5, "")[1] == f"section KafkaServer of {tmp_path}/jaas.conf"
    key = "listener.name.sasl_plaintext.plain.sasl.jaas.config"
    cfg = _config(tmp_path, **{key: f'{PLAIN_LOGIN_MODULE} required user_dave="d";'})
    assert plain_users(cfg, "SASL_PLAINTEXT") == {"dave": "d"}
    assert server_login(cfg, "SASL_PLAINTEXT", "PLAIN", PLAIN_LOGIN_MODULE, "")[1] == key
    assert plain_users(cfg, "SASL_SSL") == {"carol": "carol-secret"}  # another listener keeps the file
    with pytest.raises(ConfigError, match=f"{key}: PLAIN needs {PLAIN_LOGIN_MODULE}, found {KRB5}"):
        plain_users(_config(tmp_path, **{key: f"{KRB5} required;"}), "SASL_PLAINTEXT")
    with pytest.raises(ConfigError, match="section sasl_ssl.KafkaServer of .*: GSSAPI on listener SASL_SSL needs"):
        server_login(cfg, "SASL_SSL", "GSSAPI", KRB5, "keyTab")  # the listener's section wins, even without it


def test_file_from_the_key_or_kafka_opts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_OPTS", "-Xmx1G -Djava.security.auth.login.config=/a.conf "
                                     "'-Djava.security.auth.login.config==/b c.conf' -Dother=1")
    assert login_config_file(ServerConfig({})) == "/b c.conf"  # the last one; `==` is Java's replace-all form
    assert login_config_file(_config(tmp_path)) == f"{tmp_path}/jaas.conf"  # the broker key wins
    monkeypatch.setenv("KAFKA_OPTS", "-Djava.security.auth.login.config='/a.conf")
    with pytest.raises(ConfigError, match="KAFKA_OPTS: No closing quotation"):
        login_config_file(ServerConfig({}))
    monkeypatch.delenv("KAFKA_OPTS")
    assert login_config_file(ServerConfig({})) is None


def test_serve_refuses_an_unusable_jaas_file(tmp_path: Path) -> None:
    """A missing file, or one without the section the listener needs, stops start-up (exit 2)
    naming the file; so does a syntax error, with where it is."""
    broken = tmp_path / "broken.conf"
    broken.write_text("KafkaServer { org.example.Module required user_a=\"x\" };")
    client = tmp_path / "client.conf"
    client.write_text(f"KafkaClient {{ {PLAIN_LOGIN_MODULE} required username=\"a\" password=\"b\"; }};")
    for path, fragment in [
        (tmp_path / "missing.conf", f"cannot read the JAAS file {tmp_path}/missing.conf"),
        (client, f"Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS file {client}"),
        (broken, f"JAAS file {broken}: expected an option of org.example.Module or ';', found '}}'"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "pyk", "serve", "--override", f"log.dirs={tmp_path}/data", "--override",
             "listeners=SASL_PLAINTEXT://127.0.0.1:0", "--override", "sasl.enabled.mechanisms=PLAIN"],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, KAFKA_OPTS=f"-Djava.security.auth.login.config={path}"),
        )
        assert proc.returncode == 2, proc.stderr
        assert fragment in proc.stderr, proc.stderr
