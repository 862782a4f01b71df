"""The declarative vocabulary for protocol messages: Message, Field, Versions.

It mirrors the vocabulary of Kafka's JSON message definitions
(clients/src/main/resources/common/message/README.md in apache/kafka) so a spec in
`pyk/protocol/messages/` can be checked against the public definition line by line:

* `Versions`: "3+", "0-4", "2", "none".
* `Message`: api key, request/response, `valid` (the versions pyk implements, a subset of
  Kafka's validVersions), `flexible` (flexibleVersions: compact encodings and tagged fields).
* `Field`: snake_case name, type, versions, nullable versions, default, tagged versions + tag,
  ignorable, and sub-fields for struct and array-of-struct types.

Types are Kafka's names: int8 int16 int32 int64 uint16 uint32 float64 bool string bytes uuid
records; "[]T" is an array of T; any other name is a struct described by `fields`.
The compiled codecs (compile.py) read these objects once per (api, version); nothing here is
consulted while a message is being encoded or decoded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

PRIMITIVES = frozenset(
    {"int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "bool", "string", "bytes", "uuid", "records"}
)


@dataclass(frozen=True, slots=True)
class Versions:
    """A closed or open-ended range of versions; `hi is None` means "and every later one"."""

    lo: int
    hi: int | None

    @classmethod
    def parse(cls, text: str | Versions | None) -> Versions:
        if isinstance(text, Versions):
            return text
        if text is None or text == "none":
            return NONE
        if text.endswith("+"):
            return cls(int(text[:-1]), None)
        if "-" in text:
            lo, hi = text.split("-")
            return cls(int(lo), int(hi))
        return cls(int(text), int(text))

    def __contains__(self, version: int) -> bool:
        return self.lo <= version and (self.hi is None or version <= self.hi)

    def __str__(self) -> str:
        if self.hi is None:
            return f"{self.lo}+"
        if self.hi < self.lo:
            return "none"
        return f"{self.lo}" if self.lo == self.hi else f"{self.lo}-{self.hi}"


NONE = Versions(0, -1)

_UNSET: Any = object()


@dataclass(frozen=True, slots=True, init=False)
class Field:
    """One field of a message or struct.

    `default` is what an absent key encodes as and what a field missing from the version
    decodes as; when not given it is Kafka's implicit default (0, False, "", b"", [], the zero
    UUID, None for records, and for a struct a dict of its fields' defaults).  Nullable
    fields whose Kafka default is "null" say `default=None` explicitly, as in the JSON.
    """

    name: str
    type: str
    versions: Versions
    nullable: Versions
    default: Any
    tagged: Versions
    tag: int | None
    ignorable: bool
    fields: tuple[Field, ...]

    def __init__(
        self,
        name: str,
        type: str,
        versions: str,
        *,
        nullable: str = "none",
        default: Any = _UNSET,
        tagged: str = "none",
        tag: int | None = None,
        ignorable: bool = False,
        fields: tuple[Field, ...] | list[Field] = (),
    ) -> None:
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "type", type)
        set_(self, "versions", Versions.parse(versions))
        set_(self, "nullable", Versions.parse(nullable))
        set_(self, "tagged", Versions.parse(tagged))
        set_(self, "tag", tag)
        set_(self, "ignorable", ignorable)
        set_(self, "fields", tuple(fields))
        if (tag is None) != (self.tagged == NONE):
            raise ValueError(f"field {name}: tag and tagged versions go together")
        elem = self.element_type
        if elem is not None and elem not in PRIMITIVES and not self.fields:
            raise ValueError(f"field {name}: struct type {elem} needs fields")
        if self.is_array and elem == "records":
            raise ValueError(f"field {name}: arrays of records are not a Kafka type")
        set_(self, "default", self._implicit_default() if default is _UNSET else default)

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str | None:
        """For an array, the element type; None otherwise."""
        return self.type[2:] if self.is_array else None

    @property
    def is_struct(self) -> bool:
        """A single nested struct (not an array of them)."""
        return not self.is_array and self.type not in PRIMITIVES

    @property
    def is_struct_array(self) -> bool:
        return self.is_array and self.type[2:] not in PRIMITIVES

    def _implicit_default(self) -> Any:
        if self.is_array:
            return []
        t = self.type
        if t in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
            return 0
        if t == "float64":
            return 0.0
        if t == "bool":
            return False
        if t == "string":
            return ""
        if t == "bytes":
            return b""
        if t == "uuid":
            return ZERO_UUID
        if t == "records":
            return None
        return {f.name: f.default for f in self.fields}


ZERO_UUID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Message:
    """A request or response body for one API over the versions pyk implements."""

    api_key: int
    kind: str  # "request" or "response"
    name: str  # Kafka's name, e.g. "ProduceRequest"
    valid: Versions
    flexible: Versions
    fields: tuple[Field, ...]

    def __init__(self, api_key: int, kind: str, name: str, valid: str, flexible: str, fields: list[Field]) -> None:
        if kind not in ("request", "response"):
            raise ValueError(f"message {name}: kind must be request or response, not {kind}")
        set_ = object.__setattr__
        set_(self, "api_key", int(api_key))
        set_(self, "kind", kind)
        set_(self, "name", name)
        set_(self, "valid", Versions.parse(valid))
        set_(self, "flexible", Versions.parse(flexible))
        set_(self, "fields", tuple(fields))
        self._check(self.fields)

    def _check(self, fields: tuple[Field, ...]) -> None:
        names: set[str] = set()
        tags: set[int] = set()
        for f in fields:
            if f.name in names:
                raise ValueError(f"{self.name}: duplicate field {f.name}")
            names.add(f.name)
            if f.tag is not None:
                if f.tag in tags:
                    raise ValueError(f"{self.name}: duplicate tag {f.tag} ({f.name})")
                tags.add(f.tag)
                if f.tagged.lo < self.flexible.lo:
                    raise ValueError(f"{self.name}: {f.name} is tagged outside flexible versions")
            self._check(f.fields)
