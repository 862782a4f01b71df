"""JAAS login configuration as a Kafka broker reads it: the `sasl.jaas.config` keys and the JAAS
file named by `java.security.auth.login.config`.

One grammar serves both (Kafka's JaasConfig and the JDK's ConfigFile share it): a login module
entry is `<LoginModule class> <flag> (<option>=<value>)* ;` with values bare or quoted ("..." or
'...', backslash escapes the next character), `//` and `/* */` comments.  A key holds exactly one
entry; a file holds sections `<name> { <entries> };`.

Which entry a listener's mechanism uses is Kafka's JaasContext.loadServerContext:

1. `listener.name.<listener>.<mechanism>.sasl.jaas.config` (pyk also takes the listener-wide
   `listener.name.<listener>.sasl.jaas.config` and the broker-wide `sasl.jaas.config`, which
   Kafka ignores with a warning);
2. else the file's `<listener>.KafkaServer` section (listener name lower-cased);
3. else its `KafkaServer` section.

In the section chosen, the mechanism takes the entry of its login module (PlainLoginModule for
PLAIN's `user_<name>` options, Krb5LoginModule for GSSAPI, ...), as Kafka's callback handlers do.

The file is the `java.security.auth.login.config` broker key (server.properties or --override),
else the `-Djava.security.auth.login.config=<path>` of the KAFKA_OPTS environment variable, which
is where a Kafka broker's start script takes it from (a JVM system property).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from pyk.config import ConfigError, ServerConfig
from pyk.server.security.settings import scoped_key, setting

LOGIN_CONFIG = "java.security.auth.login.config"
SERVER_SECTION = "KafkaServer"
_FLAGS = ("required", "requisite", "sufficient", "optional")
# Whitespace and comments (skipped), quoted strings, punctuation, bare words.  A bare word may hold
# '/' (a path) but not start a comment.
_TOKEN = re.compile(r"""(\s+|//[^\n]*|/\*.*?\*/)|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([;={}])"""
                    r"""|((?:[^\s;={}"'/]|/(?![/*]))+)""", re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)


@dataclass(frozen=True)
class LoginModule:
    """One JAAS entry: the login module's class and its options."""

    name: str
    options: dict[str, str]


class _Tokens:
    """The tokens of a JAAS text: (kind, text) with kind "word" (bare or quoted) or "punct"."""

    def __init__(self, text: str, where: str) -> None:
        self.where = where
        self._items = list(self._scan(text))
        self._at = 0

    def _scan(self, text: str) -> Iterator[tuple[str, str]]:
        at = 0
        while at < len(text):
            match = _TOKEN.match(text, at)
            if match is None:
                raise ConfigError(f"{self.where}: unexpected {text[at:at + 20]!r} (an unterminated quote or comment?)")
            at = match.end()
            skip, double, single, punct, bare = match.groups()
            if skip is None:
                quoted = double if double is not None else single
                if quoted is not None:
                    yield "word", _ESCAPE.sub(r"\1", quoted)
                else:
                    yield ("punct", punct) if punct is not None else ("word", bare)

    def at(self, punct: str | None) -> bool:
        """Whether the next token is the punctuation `punct` (None: whether the text ended)."""
        if self._at == len(self._items):
            return punct is None
        kind, text = self._items[self._at]
        return kind == "punct" and text == punct

    def take(self, what: str, punct: str | None = None) -> str:
        """The next token: a word, or the punctuation `punct`; ConfigError saying `what` was expected."""
        item = self._items[self._at] if self._at < len(self._items) else None
        if item is None or item[0] != ("punct" if punct else "word") or (punct is not None and item[1] != punct):
            found = repr(item[1]) if item else "the end"
            raise ConfigError(f"{self.where}: expected {what}, found {found}")
        self._at += 1
        return item[1]


def _entries(tokens: _Tokens, end: str | None) -> list[LoginModule]:
    """Login module entries up to the `end` punctuation (or the end of the text)."""
    entries = []
    while not tokens.at(end):
        name = tokens.take("a login module class" + (f" or '{end}'" if end else ""))
        flag = tokens.take("a control flag (required, requisite, sufficient, optional)")
        if flag.lower() not in _FLAGS:
            raise ConfigError(f"{tokens.where}: invalid control flag {flag!r} of {name}")
        options: dict[str, str] = {}
        while not tokens.at(";"):
            key = tokens.take(f"an option of {name} or ';'")
            tokens.take(f"'=' after {key}", "=")
            options[key] = tokens.take(f"a value for {key}")
        tokens.take("';'", ";")
        entries.append(LoginModule(name, options))
    return entries


def parse_entry(text: str, key: str) -> LoginModule:
    """The one login module of a sasl.jaas.config value (Kafka refuses more or fewer)."""
    entries = _entries(_Tokens(text, key), None)
    if len(entries) != 1:
        raise ConfigError(f"{key}: JAAS config property contains {len(entries)} login modules, should be 1 module")
    return entries[0]


def parse_file(text: str, path: str) -> dict[str, list[LoginModule]]:
    """The sections of a JAAS file: name -> its entries."""
    tokens = _Tokens(text, f"JAAS file {path}")
    sections: dict[str, list[LoginModule]] = {}
    while not tokens.at(None):
        name = tokens.take("a section name")
        tokens.take(f"'{{' after {name}", "{")
        sections[name] = _entries(tokens, "}")
        tokens.take("'}'", "}")
        tokens.take(f"';' after the section {name}", ";")
    return sections


def login_config_file(config: ServerConfig) -> str | None:
    """The JAAS file: the broker key, else KAFKA_OPTS' -D option (the last one, as the JVM takes it;
    `==` is Java's form that replaces other files)."""
    path: str | None = config[LOGIN_CONFIG]
    if path:
        return path
    prefix = f"-D{LOGIN_CONFIG}="
    try:
        options = shlex.split(os.environ.get("KAFKA_OPTS", ""))
    except ValueError as exc:
        raise ConfigError(f"KAFKA_OPTS: {exc}") from None
    found = [arg[len(prefix):] for arg in options if arg.startswith(prefix)]
    return found[-1].removeprefix("=") if found else None


def server_login(config: ServerConfig, listener: str, mechanism: str, module: str, needs: str) -> tuple[dict[str, str], str]:
    """(options, where they come from) of the `module` entry `mechanism` uses on `listener`, chosen
    as the module docstring says; ConfigError saying what is missing, with `needs` (the options
    the caller wants) in the message."""
    key = scoped_key(config, listener, "sasl.jaas.config", mechanism)
    text = setting(config, listener, "sasl.jaas.config", mechanism)
    if text:
        entry = parse_entry(text, key)
        if entry.name != module:
            raise ConfigError(f"{key}: {mechanism} needs {module}, found {entry.name}")
        return entry.options, key
    path = login_config_file(config)
    wanted = f"{listener.lower()}.{SERVER_SECTION}"
    if path is None:
        raise ConfigError(f"{mechanism} is enabled on listener {listener} but "
                          f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config is not set and no "
                          f"JAAS file is named ({LOGIN_CONFIG}, or -D{LOGIN_CONFIG}=<file> in KAFKA_OPTS): it needs "
                          f"a {module} entry with {needs}")
    try:
        with open(path, encoding="utf-8") as fh:
            sections = parse_file(fh.read(), path)
    except OSError as exc:
        raise ConfigError(f"cannot read the JAAS file {path} ({LOGIN_CONFIG}): {exc.strerror}") from None
    section = wanted if wanted in sections else SERVER_SECTION
    if section not in sections:
        raise ConfigError(f"Could not find a '{SERVER_SECTION}' or '{wanted}' entry in the JAAS file {path} "
                          f"({mechanism} on listener {listener} needs a {module} entry with {needs})")
    where = f"section {section} of {path}"
    for entry in sections[section]:
        if entry.name == module:
            return entry.options, where
    raise ConfigError(f"{where}: {mechanism} on listener {listener} needs a {module} entry with {needs}")
