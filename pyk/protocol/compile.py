"""Compile a `Message` spec for one version into flat encode/decode functions.

For each (message, version) this module writes Python source with every field inlined in
order -- consecutive fixed-width fields folded into one precompiled `struct.Struct` call,
arrays as plain loops, nested structs as dict literals -- `exec`s it once and caches the
function.  At run time nothing looks at the spec: a ProduceRequest decode is one function with
no per-field dispatch (the same idea as Kafka's generated `*Data` classes and kafka-python's
`fields/codegen.py`, produced here at import time instead of build time).

Decoders: `decode(buf: memoryview, pos: int) -> dict`.
  * Fields not in the version decode to their defaults, so handlers read every key of the
    latest version regardless of what the client speaks.
  * Tagged fields (flexible versions): known tags are decoded, unknown tags skipped.
  * `records` fields decode to a zero-copy memoryview slice of `buf` (or None); `bytes`
    fields are copied, because handlers keep them (group metadata) beyond the frame's life.
  * Truncated or malformed input raises ProtocolViolation saying what was expected and what
    remained.

Encoders: `encode(body: dict, out: bytearray, parts: list) -> bytearray` append to `out` and
return the buffer to continue in (it changes when a records value is a sendable object:
`out` is closed into `parts`, the object appended as its own part, and a fresh buffer
returned).
  * A key absent from the dict encodes the field's default.
  * A tagged field is written only when its value differs from its default.  Kafka never sends
    tagged fields at their default, and librdkafka 2.0.2 (Debian 12) mis-parses responses
    that do.
  * Fields outside the version are ignored, except in strict mode (client-side request
    encoding) where a non-ignorable field holding a non-default value is an error, as in
    Kafka's generated `write()` (UnsupportedVersionException).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any

from pyk.errors import ProtocolViolation
from pyk.protocol import primitives
from pyk.protocol.spec import Field, Message

Decoder = Callable[[memoryview, int], dict[str, Any]]
Encoder = Callable[[dict[str, Any], bytearray, list[Any]], bytearray]

# struct format characters of the fixed-width types
_FIXED = {
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint16": "H",
    "uint32": "I",
    "float64": "d",
    "bool": "?",
    "uuid": "16s",
}


class UnsupportedFieldVersion(ValueError):
    """Strict encoding met a non-default value for a field the version cannot carry."""


# --------------------------------------------------------------------------------------------
# Helpers the generated code calls (bound into its namespace under short names)


def _truncated(name: str, buf: memoryview, pos: int, exc: Exception) -> ProtocolViolation:
    return ProtocolViolation(f"{name}: truncated at offset {pos} with {max(len(buf) - pos, 0)} bytes left ({exc})")


def _short(what: str, need: int, buf: memoryview, pos: int) -> ProtocolViolation:
    return primitives.short_read(what, need, buf, pos)


def _null(what: str, pos: int) -> ProtocolViolation:
    return ProtocolViolation(f"null or negative length for non-nullable {what} at offset {pos}")


def _too_many(what: str, count: int, buf: memoryview, pos: int) -> ProtocolViolation:
    return ProtocolViolation(f"{what}: {count} elements at offset {pos} but only {len(buf) - pos} bytes remain")


def _skip_tags(buf: memoryview, pos: int) -> int:
    return primitives.skip_tagged_fields(buf, pos)


def _unsupported(message: str, field: str, version: int) -> UnsupportedFieldVersion:
    return UnsupportedFieldVersion(f"{message} v{version} cannot carry a non-default {field}")


def _struct_differs(value: dict[str, Any], default: dict[str, Any]) -> bool:
    get = value.get
    return any(get(k, dv) != dv for k, dv in default.items())


_BUFFERS = (bytes, bytearray, memoryview)

_BASE_NAMESPACE: dict[str, Any] = {
    "_StructError": struct.error,
    "_PV": ProtocolViolation,
    "_UUID": uuid.UUID,
    "_ruv": primitives.read_uvarint,
    "_uvb": primitives.encode_uvarint,
    "_truncated": _truncated,
    "_short": _short,
    "_null": _null,
    "_too_many": _too_many,
    "_skip_tags": _skip_tags,
    "_unsupported": _unsupported,
    "_differs": _struct_differs,
    "_BUFFERS": _BUFFERS,
    "_I16": primitives.INT16,
    "_I32": primitives.INT32,
}


class _Source:
    """Accumulates generated lines and the constants they refer to."""

    def __init__(self, message: Message, version: int) -> None:
        self.message = message
        self.version = version
        self.flexible = version in message.flexible
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = dict(_BASE_NAMESPACE)
        self._consts: dict[Any, str] = {}
        self._n = 0

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def var(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, key: Any, value: Any) -> str:
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = f"_K{len(self._consts)}"
            self.namespace[name] = value
        return name

    def struct(self, fmt: str) -> str:
        return self.const(("struct", fmt), struct.Struct(">" + fmt))

    def default_expr(self, f: Field, fresh: bool) -> str:
        """Source for f's default; `fresh` builds new lists/dicts (decoded values are owned
        by the caller, who may mutate them), otherwise shared constants are fine."""
        d = f.default
        if isinstance(d, list):
            if d:
                raise ValueError(f"{f.name}: only empty array defaults are supported")
            return "[]" if fresh else "()"
        if isinstance(d, dict):
            if fresh:
                return "{" + ", ".join(f"{sf.name!r}: {self.default_expr(sf, True)}" for sf in f.fields) + "}"
            return self.const(("default", id(f)), d)
        if isinstance(d, uuid.UUID):
            return self.const(("uuid", d), d)
        if d is None or isinstance(d, bool | int | float | str | bytes):
            return repr(d)
        raise ValueError(f"{f.name}: unsupported default {d!r}")


def _present(f: Field, version: int) -> bool:
    return version in f.versions


def _is_tagged(f: Field, version: int) -> bool:
    return version in f.tagged


def _fixed(f: Field) -> str | None:
    return _FIXED.get(f.type)


# --------------------------------------------------------------------------------------------
# Decoder generation


def _decode_struct(src: _Source, fields: tuple[Field, ...], ind: int, path: str) -> str:
    """Emit code reading `fields` at `pos`; return a dict-literal expression of the result."""
    v = src.version
    entries: list[tuple[str, str]] = []
    run: list[tuple[Field, str]] = []
    tagged: list[tuple[Field, str]] = []

    def flush() -> None:
        if not run:
            return
        fmt = "".join(_FIXED[f.type] for f, _ in run)
        s = src.struct(fmt)
        names = ", ".join(var for _, var in run)
        src.emit(ind, f"{names}, = {s}.unpack_from(buf, pos)")
        src.emit(ind, f"pos += {struct.calcsize('>' + fmt)}")
        for f, var in run:
            if f.type == "uuid":
                src.emit(ind, f"{var} = _UUID(bytes={var})")
        run.clear()

    for f in fields:
        if not _present(f, v):
            entries.append((f.name, src.default_expr(f, fresh=True)))
            continue
        var = src.var("v")
        entries.append((f.name, var))
        if _is_tagged(f, v):
            tagged.append((f, var))
            continue
        if _fixed(f) is not None:
            run.append((f, var))
            continue
        flush()
        _decode_field(src, f, var, ind, f"{path}.{f.name}")
    flush()
    if src.flexible:
        _decode_tagged(src, tagged, ind, path)
    return "{" + ", ".join(f"{name!r}: {expr}" for name, expr in entries) + "}"


def _read_uvarint(src: _Source, var: str, ind: int) -> None:
    # Inline the one-byte case: lengths and counts below 127 are the norm.
    src.emit(ind, f"{var} = buf[pos]")
    src.emit(ind, f"if {var} < 128:")
    src.emit(ind + 1, "pos += 1")
    src.emit(ind, "else:")
    src.emit(ind + 1, f"{var}, pos = _ruv(buf, pos)")


def _decode_length(src: _Source, f: Field, var: str, ind: int, width: str) -> None:
    """Read a length or count into `var`, leaving -1 for null (both encodings)."""
    if src.flexible:
        _read_uvarint(src, var, ind)
        src.emit(ind, f"{var} -= 1")
    else:
        s = src.struct(width)
        src.emit(ind, f"{var} = {s}.unpack_from(buf, pos)[0]")
        src.emit(ind, f"pos += {struct.calcsize('>' + width)}")


def _decode_field(src: _Source, f: Field, var: str, ind: int, path: str) -> None:
    v = src.version
    nullable = v in f.nullable
    t = f.type
    if t in ("string", "bytes", "records"):
        ln = src.var("ln")
        _decode_length(src, f, ln, ind, "h" if t == "string" else "i")
        src.emit(ind, f"if {ln} < 0:")
        if nullable:
            src.emit(ind + 1, f"if {ln} != -1:")
            src.emit(ind + 2, f"raise _PV('{path}: length ' + str({ln}) + ' at offset ' + str(pos))")
            src.emit(ind + 1, f"{var} = None")
        else:
            src.emit(ind + 1, f"raise _null('{t} {path}', pos)")
        src.emit(ind, "else:")
        end = src.var("end")
        src.emit(ind + 1, f"{end} = pos + {ln}")
        src.emit(ind + 1, f"if {end} > len(buf):")
        src.emit(ind + 2, f"raise _short('{t} {path}', {ln}, buf, pos)")
        if t == "string":
            src.emit(ind + 1, f"{var} = str(buf[pos:{end}], 'utf-8')")
        elif t == "bytes":
            src.emit(ind + 1, f"{var} = bytes(buf[pos:{end}])")
        else:
            src.emit(ind + 1, f"{var} = buf[pos:{end}]")
        src.emit(ind + 1, f"pos = {end}")
        return
    if f.is_struct:
        if nullable:
            # Kafka's nullable struct: an int8 marker, -1 for null, 1 before a present struct.
            marker = src.var("m")
            s = src.struct("b")
            src.emit(ind, f"{marker} = {s}.unpack_from(buf, pos)[0]")
            src.emit(ind, "pos += 1")
            src.emit(ind, f"if {marker} < 0:")
            src.emit(ind + 1, f"{var} = None")
            src.emit(ind, "else:")
            expr = _decode_struct(src, f.fields, ind + 1, path)
            src.emit(ind + 1, f"{var} = {expr}")
            return
        expr = _decode_struct(src, f.fields, ind, path)
        src.emit(ind, f"{var} = {expr}")
        return
    if f.is_array:
        cnt = src.var("n")
        _decode_length(src, f, cnt, ind, "i")
        src.emit(ind, f"if {cnt} < 0:")
        if nullable:
            src.emit(ind + 1, f"{var} = None")
        else:
            src.emit(ind + 1, f"raise _null('array {path}', pos)")
        src.emit(ind, "else:")
        elem = f.element_type
        assert elem is not None
        fmt = _FIXED.get(elem)
        if fmt is not None and elem != "uuid":
            s = src.struct(fmt)
            size = struct.calcsize(">" + fmt)
            src.emit(ind + 1, f"if pos + {cnt} * {size} > len(buf):")
            src.emit(ind + 2, f"raise _short('array {path}', {cnt} * {size}, buf, pos)")
            src.emit(ind + 1, f"{var} = [{s}.unpack_from(buf, pos + {size} * i)[0] for i in range({cnt})]")
            src.emit(ind + 1, f"pos += {cnt} * {size}")
            return
        # Each element takes at least one byte: a larger count is a lie, refused before looping.
        src.emit(ind + 1, f"if {cnt} > len(buf) - pos:")
        src.emit(ind + 2, f"raise _too_many('array {path}', {cnt}, buf, pos)")
        src.emit(ind + 1, f"{var} = []")
        src.emit(ind + 1, f"for _ in range({cnt}):")
        item = src.var("x")
        if f.is_struct_array:
            expr = _decode_struct(src, f.fields, ind + 2, path + "[]")
            src.emit(ind + 2, f"{var}.append({expr})")
        else:
            elem_field = Field(f.name, elem, "0+")
            _decode_field(src, elem_field, item, ind + 2, path + "[]")
            src.emit(ind + 2, f"{var}.append({item})")
        return
    fmt = _FIXED[t]
    s = src.struct(fmt)
    src.emit(ind, f"{var} = {s}.unpack_from(buf, pos)[0]")
    src.emit(ind, f"pos += {struct.calcsize('>' + fmt)}")
    if t == "uuid":
        src.emit(ind, f"{var} = _UUID(bytes={var})")


def _decode_tagged(src: _Source, tagged: list[tuple[Field, str]], ind: int, path: str) -> None:
    if not tagged:
        # Nothing known to look for: the common empty section is one zero byte.
        src.emit(ind, "if buf[pos] == 0:")
        src.emit(ind + 1, "pos += 1")
        src.emit(ind, "else:")
        src.emit(ind + 1, "pos = _skip_tags(buf, pos)")
        return
    for f, var in tagged:
        src.emit(ind, f"{var} = {src.default_expr(f, fresh=True)}")
    count, tag, size, end = src.var("nt"), src.var("tag"), src.var("sz"), src.var("te")
    _read_uvarint(src, count, ind)
    src.emit(ind, f"for _ in range({count}):")
    src.emit(ind + 1, f"{tag}, pos = _ruv(buf, pos)")
    src.emit(ind + 1, f"{size}, pos = _ruv(buf, pos)")
    src.emit(ind + 1, f"{end} = pos + {size}")
    src.emit(ind + 1, f"if {end} > len(buf):")
    src.emit(ind + 2, f"raise _short('tagged field ' + str({tag}) + ' of {path}', {size}, buf, pos)")
    keyword = "if"
    for f, var in sorted(tagged, key=lambda fv: fv[0].tag or 0):
        src.emit(ind + 1, f"{keyword} {tag} == {f.tag}:")
        keyword = "elif"
        if f.is_struct or f.is_array or f.type in ("string", "bytes", "records"):
            _decode_field(src, f, var, ind + 2, f"{path}.{f.name}")
        else:
            # Fixed-width tagged values are read where they sit; `pos = end` below moves on.
            fmt = _FIXED[f.type]
            s = src.struct(fmt)
            src.emit(ind + 2, f"{var} = {s}.unpack_from(buf, pos)[0]")
            if f.type == "uuid":
                src.emit(ind + 2, f"{var} = _UUID(bytes={var})")
    # Unknown tags fall through: skipping them is what makes tagged fields compatible.
    src.emit(ind + 1, f"pos = {end}")


def _build_decoder(message: Message, version: int) -> tuple[Decoder, str]:
    src = _Source(message, version)
    src.emit(0, "def decode(buf, pos):")
    src.emit(1, "try:")
    expr = _decode_struct(src, message.fields, 2, message.name)
    src.emit(2, f"return {expr}")
    src.emit(1, "except (_StructError, IndexError) as exc:")
    src.emit(2, f"raise _truncated('{message.name} v{version}', buf, pos, exc) from None")
    src.emit(1, "except UnicodeDecodeError as exc:")
    src.emit(2, f"raise _PV('{message.name} v{version}: string is not UTF-8: ' + str(exc)) from None")
    return _exec(src, "decode"), "\n".join(src.lines)


# --------------------------------------------------------------------------------------------
# Encoder generation


def _differs_expr(src: _Source, f: Field, value: str) -> str:
    """Expression: `value` is not f's default (so a tagged field must be written)."""
    d = f.default
    if isinstance(d, list):
        return f"{value}"  # empty default: any non-empty (or null) array differs
    if isinstance(d, dict):
        # An absent key yields the shared default object itself: the identity test makes the
        # common case (nothing to say) one comparison.
        const = src.default_expr(f, fresh=False)
        return f"({value} is not {const} and _differs({value}, {const}))"
    if d is None:
        return f"{value} is not None"
    return f"{value} != {src.default_expr(f, fresh=False)}"


def _encode_struct(src: _Source, fields: tuple[Field, ...], obj: str, out: str, ind: int, path: str,
                   strict: bool) -> None:
    v = src.version
    run: list[str] = []
    fmt: list[str] = []
    tagged: list[Field] = []

    def flush() -> None:
        if run:
            s = src.struct("".join(fmt))
            src.emit(ind, f"{out} += {s}.pack({', '.join(run)})")
            run.clear()
            fmt.clear()

    for f in fields:
        if not _present(f, v):
            if strict and not f.ignorable:
                value = src.var("u")
                src.emit(ind, f"{value} = {obj}.get({f.name!r}, {src.default_expr(f, fresh=False)})")
                src.emit(ind, f"if {_differs_expr(src, f, value)}:")
                src.emit(ind + 1, f"raise _unsupported({src.message.name!r}, '{path}.{f.name}', {v})")
            continue
        if _is_tagged(f, v):
            tagged.append(f)
            continue
        get = f"{obj}.get({f.name!r}, {src.default_expr(f, fresh=False)})"
        code = _fixed(f)
        if code is not None:
            fmt.append(code)
            run.append(get + ".bytes" if f.type == "uuid" else get)
            continue
        flush()
        value = src.var("w")
        src.emit(ind, f"{value} = {get}")
        _encode_field(src, f, value, out, ind, f"{path}.{f.name}", strict)
    flush()
    if src.flexible:
        _encode_tagged(src, tagged, obj, out, ind, path, strict)


def _encode_length(src: _Source, length: str, out: str, ind: int, width: str) -> None:
    if src.flexible:
        src.emit(ind, f"{out} += _uvb({length} + 1)")
    else:
        src.emit(ind, f"{out} += {'_I16' if width == 'h' else '_I32'}.pack({length})")


def _encode_null(src: _Source, out: str, ind: int, width: str) -> None:
    null = b"\x00" if src.flexible else b"\xff" * (2 if width == "h" else 4)
    src.emit(ind, f"{out} += {null!r}")


def _encode_field(src: _Source, f: Field, value: str, out: str, ind: int, path: str, strict: bool) -> None:
    v = src.version
    nullable = v in f.nullable
    t = f.type
    if t in ("string", "bytes", "records"):
        width = "h" if t == "string" else "i"
        body = ind
        if nullable:
            src.emit(ind, f"if {value} is None:")
            _encode_null(src, out, ind + 1, width)
            if t == "records":
                src.emit(ind, f"elif not isinstance({value}, _BUFFERS):")
                # A sendable (file slice): write its length, close the current buffer into
                # `parts`, emit the object as its own part and continue in a fresh buffer.
                if out != "out":
                    raise ValueError(f"{path}: records inside a tagged field are not supported")
                _encode_length(src, f"{value}.size", out, ind + 1, width)
                src.emit(ind + 1, "parts.append(out)")
                src.emit(ind + 1, f"parts.append({value})")
                src.emit(ind + 1, "out = bytearray()")
            src.emit(ind, "else:")
            body = ind + 1
        if t == "string":
            raw = src.var("s")
            src.emit(body, f"{raw} = {value}.encode()")
            _encode_length(src, f"len({raw})", out, body, width)
            src.emit(body, f"{out} += {raw}")
        else:
            _encode_length(src, f"len({value})", out, body, width)
            src.emit(body, f"{out} += {value}")
        return
    if f.is_struct:
        if nullable:
            src.emit(ind, f"if {value} is None:")
            src.emit(ind + 1, f"{out} += b'\\xff'")
            src.emit(ind, "else:")
            src.emit(ind + 1, f"{out} += b'\\x01'")
            _encode_struct(src, f.fields, value, out, ind + 1, path, strict)
            return
        _encode_struct(src, f.fields, value, out, ind, path, strict)
        return
    if f.is_array:
        body = ind
        if nullable:
            src.emit(ind, f"if {value} is None:")
            _encode_null(src, out, ind + 1, "i")
            src.emit(ind, "else:")
            body = ind + 1
        _encode_length(src, f"len({value})", out, body, "i")
        item = src.var("e")
        src.emit(body, f"for {item} in {value}:")
        elem = f.element_type
        assert elem is not None
        if f.is_struct_array:
            _encode_struct(src, f.fields, item, out, body + 1, path + "[]", strict)
        else:
            _encode_field(src, Field(f.name, elem, "0+"), item, out, body + 1, path + "[]", strict)
        return
    s = src.struct(_FIXED[t])
    src.emit(ind, f"{out} += {s}.pack({value}{'.bytes' if t == 'uuid' else ''})")


def _encode_tagged(src: _Source, tagged: list[Field], obj: str, out: str, ind: int, path: str,
                   strict: bool) -> None:
    if not tagged:
        src.emit(ind, f"{out} += b'\\x00'")
        return
    found = src.var("tg")
    src.emit(ind, f"{found} = []")
    for f in sorted(tagged, key=lambda f: f.tag or 0):
        value = src.var("w")
        src.emit(ind, f"{value} = {obj}.get({f.name!r}, {src.default_expr(f, fresh=False)})")
        src.emit(ind, f"if {_differs_expr(src, f, value)}:")
        buf = src.var("t")
        src.emit(ind + 1, f"{buf} = bytearray()")
        _encode_field(src, f, value, buf, ind + 1, f"{path}.{f.name}", strict)
        src.emit(ind + 1, f"{found}.append(({f.tag}, {buf}))")
    tag, data = src.var("tag"), src.var("td")
    src.emit(ind, f"{out} += _uvb(len({found}))")
    src.emit(ind, f"for {tag}, {data} in {found}:")
    src.emit(ind + 1, f"{out} += _uvb({tag})")
    src.emit(ind + 1, f"{out} += _uvb(len({data}))")
    src.emit(ind + 1, f"{out} += {data}")


def _build_encoder(message: Message, version: int, strict: bool) -> tuple[Encoder, str]:
    src = _Source(message, version)
    src.emit(0, "def encode(body, out, parts):")
    _encode_struct(src, message.fields, "body", "out", 1, message.name, strict)
    src.emit(1, "return out")
    return _exec(src, "encode"), "\n".join(src.lines)


# --------------------------------------------------------------------------------------------
# Cache


def _exec(src: _Source, name: str) -> Any:
    text = "\n".join(src.lines) + "\n"
    code = compile(text, f"<pyk.protocol {src.message.name} v{src.version} {name}>", "exec")
    namespace = src.namespace
    exec(code, namespace)
    return namespace[name]


_decoders: dict[tuple[str, int], Decoder] = {}
_encoders: dict[tuple[str, int, bool], Encoder] = {}


def decoder(message: Message, version: int) -> Decoder:
    """The cached decoder of `message` at `version` (compiled on first use)."""
    fn = _decoders.get((message.name, version))
    if fn is None:
        fn = _decoders[(message.name, version)] = _build_decoder(message, version)[0]
    return fn


def encoder(message: Message, version: int, strict: bool = False) -> Encoder:
    """The cached encoder of `message` at `version`; see the module docstring for `strict`."""
    key = (message.name, version, strict)
    fn = _encoders.get(key)
    if fn is None:
        fn = _encoders[key] = _build_encoder(message, version, strict)[0]
    return fn


def source(message: Message, version: int, direction: str) -> str:
    """The generated source of one codec ("decode", "encode", "encode-strict"), for debugging."""
    if direction == "decode":
        return _build_decoder(message, version)[1]
    return _build_encoder(message, version, direction == "encode-strict")[1]
