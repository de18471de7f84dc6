"""Polars binary plans read as plain data, vetted and made to load the server's OpenDP library.

A plan from `LazyFrame.serialize()` is the bytes `DSL_VERSION`, the DSL major and minor
version (two little-endian u16), a schema hash and the plan in MessagePack. This module
reads that MessagePack with its own strict decoder (data only: nothing is imported,
called or loaded), refuses every node that could run Python, read or write files or
load a foreign library, and swaps the client's OpenDP library path for the server's own.
Only the vetted bytes are ever handed to polars.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lomas.errors import InvalidQuery
from queries.libraries.opendp.guard import PICKLE_REFUSED

MAGIC = b"DSL_VERSION"
SCHEMA_HASH_LENGTH = 64
MAX_DEPTH = 256  # nesting of MessagePack containers; client plans stay far below

# Plan nodes (serde enum tags) that run Python, read or write files or URLs, or call native
# code: refused wherever they appear, except the in-memory source and OpenDP's plugin calls.
_FORBIDDEN_TAG = re.compile(r"Python|Opaque|Anonymous|Udf|Pickle|Scan|Sink|Plugin|Callback|PipeWith")
_ALLOWED_TAGS = frozenset({"DataFrameScan", "FfiPlugin"})
# A Python object as polars serializes it: "PLPYFN" and metadata, or a pickler byte, the
# Python minor and micro version, then a pickle stream (protocol 2 to 5).
_PYTHON_OBJECT = re.compile(rb"\APLPYFN|\A[\x00\x01][\x00-\xff]{2}\x80[\x02-\x05]", re.DOTALL)
# OpenDP's compiled library as a client's plan names it: .../opendp/lib/opendp<suffix>,
# relative to the client's virtualenv or absolute, with slash or backslash separators.
_OPENDP_LIBRARY = re.compile(r"(?:^|[/\\])opendp[/\\]lib[/\\]opendp[\w.-]*\.(?:so|dylib|pyd|dll)$")
_FOREIGN = "The plan may only call OpenDP: it {reason}."


class MalformedPlan(InvalidQuery):
    """The bytes are not a polars plan of the server's version."""


class UnsafePlan(InvalidQuery):
    """The plan holds something other than data and OpenDP expressions."""


class _Str(str):
    """A decoded MessagePack string that remembers where its token lies in the plan."""

    start: int
    end: int


@dataclass(frozen=True)
class VettedPlan:
    """A plan that passed intake: its bytes, loading the server's OpenDP library, and its source columns."""

    plan: bytes
    source_columns: frozenset[str]


def dsl_version(plan: bytes) -> tuple[int, int]:
    """The DSL (major, minor) version of a polars binary plan, or MalformedPlan."""
    if not plan.startswith(MAGIC) or len(plan) < len(MAGIC) + 4 + SCHEMA_HASH_LENGTH:
        raise MalformedPlan("The plan is not a serialized polars LazyFrame (no DSL_VERSION header).")
    return struct.unpack_from("<HH", plan, len(MAGIC))


def vet(plan: bytes, *, server_version: tuple[int, int], server_library: str) -> VettedPlan:
    """Read the plan as data and refuse what the server never runs; the client's OpenDP path becomes ours.

    Raises MalformedPlan (not a plan of the server's polars DSL version, truncated or
    corrupt) or UnsafePlan (Python objects, file or URL scans and sinks, foreign plugins).
    """
    major, minor = dsl_version(plan)
    if major != server_version[0] or minor > server_version[1]:
        raise MalformedPlan(
            f"The plan was serialized by a polars version with plan format (DSL_VERSION) {major}.{minor}; "
            f"this server reads {server_version[0]}.{server_version[1]}: build it with the polars version "
            "of lomas-client's requirements."
        )
    tree = decode(plan, len(MAGIC) + 4 + SCHEMA_HASH_LENGTH)
    libraries = check_plan(tree, library_allowed=is_opendp_library)
    return VettedPlan(with_library(plan, libraries, server_library), frozenset(source_columns(tree)))


def decode(plan: bytes, offset: int) -> Any:
    """The MessagePack document at `offset`, which must end exactly where the bytes end."""
    reader = _Reader(plan, offset)
    try:
        value = reader.value(0)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise MalformedPlan("The plan is truncated or corrupt.") from exc
    if reader.offset != len(plan):
        raise MalformedPlan("The plan is truncated or corrupt.")
    return value


# MessagePack tags: constants, and struct formats of sizes and numbers.
_CONSTANTS = {0xC0: None, 0xC2: False, 0xC3: True}
_BINARY_SIZES = {0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}
_STRING_SIZES = {0xD9: ">B", 0xDA: ">H", 0xDB: ">I"}
_ARRAY_SIZES = {0xDC: ">H", 0xDD: ">I"}
_MAP_SIZES = {0xDE: ">H", 0xDF: ">I"}
_NUMBERS = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
            0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}  # fmt: skip


class _Reader:
    """A strict MessagePack decoder: maps become dicts, bin becomes bytes, ext is refused."""

    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise IndexError("past the end")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def value(self, depth: int) -> Any:  # noqa: PLR0911 (one return per MessagePack type)
        if depth > MAX_DEPTH:
            raise MalformedPlan("The plan is nested too deeply.")
        start = self.offset
        tag = self.take(1)[0]
        if tag <= 0x7F:
            return tag
        if tag >= 0xE0:
            return tag - 0x100
        if 0x80 <= tag <= 0x8F:
            return self.map(tag & 0x0F, depth)
        if 0x90 <= tag <= 0x9F:
            return self.array(tag & 0x0F, depth)
        if 0xA0 <= tag <= 0xBF:
            return self.string(tag & 0x1F, start)
        if tag in _CONSTANTS:
            return _CONSTANTS[tag]
        if tag in _BINARY_SIZES:
            return self.take(self.unpack(_BINARY_SIZES[tag]))
        if tag in _STRING_SIZES:
            return self.string(self.unpack(_STRING_SIZES[tag]), start)
        if tag in _NUMBERS:
            return self.unpack(_NUMBERS[tag])
        if tag in _ARRAY_SIZES:
            return self.array(self.unpack(_ARRAY_SIZES[tag]), depth)
        if tag in _MAP_SIZES:
            return self.map(self.unpack(_MAP_SIZES[tag]), depth)
        raise MalformedPlan("The plan is truncated or corrupt.")  # ext types and the unused 0xC1

    def string(self, size: int, start: int) -> _Str:
        text = _Str(self.take(size).decode("utf-8"))
        text.start, text.end = start, self.offset
        return text

    def array(self, count: int, depth: int) -> list[Any]:
        return [self.value(depth + 1) for _ in range(count)]

    def map(self, count: int, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for _ in range(count):
            key = self.value(depth + 1)
            if isinstance(key, list | dict) or key in result:  # serde would read a duplicate key differently
                raise MalformedPlan("The plan is truncated or corrupt.")
            result[key] = self.value(depth + 1)
        return result


def check_plan(tree: Any, *, library_allowed: Callable[[str], bool]) -> list[Any]:
    """Refuse Python, file and foreign-library nodes; returns the plan's plugin library path strings.

    Works on the decoded MessagePack plan and on polars' JSON form of a plan alike.
    `library_allowed` says whether a plugin's library path is OpenDP's. The walk is
    iterative (no recursion limit); the keys of schema `fields` maps are column names,
    not nodes.
    """
    libraries: list[Any] = []
    stack: list[tuple[Any, bool]] = [(tree, True)]
    while stack:
        item, keys_are_tags = stack.pop()
        if isinstance(item, bytes) or _is_byte_list(item):
            if _PYTHON_OBJECT.match(bytes(item)):
                raise UnsafePlan(PICKLE_REFUSED)
        elif isinstance(item, list):
            stack.extend((value, True) for value in item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if keys_are_tags and isinstance(key, str):
                    _check_tag(key)
                if key == "FfiPlugin":
                    libraries.append(_plugin_library(value, library_allowed))
                stack.append((value, key != "fields"))
    return libraries


def _check_tag(key: str) -> None:
    if not key[:1].isupper() or key in _ALLOWED_TAGS or not _FORBIDDEN_TAG.search(key):
        return
    if "Python" not in key and ("Scan" in key or "Sink" in key):
        raise UnsafePlan(f"The plan reads or writes files or URLs ({key}); plans may only use the dataset.")
    if "Plugin" in key:
        raise UnsafePlan(_FOREIGN.format(reason=f"calls a {key}, which the server never loads"))
    raise UnsafePlan(PICKLE_REFUSED)


def _plugin_library(plugin: Any, library_allowed: Callable[[str], bool]) -> Any:
    library = plugin.get("lib") if isinstance(plugin, dict) else None
    if not isinstance(library, str) or not library_allowed(library):
        raise UnsafePlan(_FOREIGN.format(reason="calls a polars plugin that is not OpenDP's library"))
    return library


def _is_byte_list(item: Any) -> bool:
    """A list of byte values: how the plan's MessagePack and JSON forms hold binary data."""
    return isinstance(item, list) and len(item) > 4 and all(type(value) is int and 0 <= value <= 0xFF for value in item)


def source_columns(tree: Any) -> set[str]:
    """The column names of every in-memory frame the plan starts from."""
    columns: set[str] = set()
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            scan = item.get("DataFrameScan")
            if isinstance(scan, dict) and isinstance(scan.get("schema"), dict):
                columns.update(str(name) for name in scan["schema"].get("fields") or {})
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(value for value in item if isinstance(value, list | dict))
    return columns


def is_opendp_library(path: str) -> bool:
    """Whether a client's plugin path names OpenDP's compiled library."""
    return bool(_OPENDP_LIBRARY.search(path)) and ".." not in re.split(r"[/\\]", path)


def with_library(plan: bytes, libraries: list[_Str], server_library: str) -> bytes:
    """The plan with each listed plugin path token replaced by the server's OpenDP library path."""
    token = _string_token(server_library.encode("utf-8"))
    spans = sorted({(library.start, library.end) for library in libraries})
    pieces, position = [], 0
    for start, end in spans:
        pieces += [plan[position:start], token]
        position = end
    pieces.append(plan[position:])
    return b"".join(pieces)


def _string_token(encoded: bytes) -> bytes:
    size = len(encoded)
    if size < 32:
        return bytes([0xA0 | size]) + encoded
    if size < 2**8:
        return b"\xd9" + struct.pack(">B", size) + encoded
    if size < 2**16:
        return b"\xda" + struct.pack(">H", size) + encoded
    return b"\xdb" + struct.pack(">I", size) + encoded
