"""Record classes: what ``@table`` and ``@type`` turn a class into.

A record is a plain, mutable, slotted object with keyword construction, equality and repr. Each record class
carries a ``RecordInfo`` (``cls.__stdb_record__``) with its field names, defaults, and the two converters to and
from the canonical tuple. The converters are generated (``exec``) once the module's types are known, because
only then do we know which fields hold nested records, enums or sums that need converting; fields that need
nothing are copied as they are (``operator.attrgetter`` when no field needs anything).
"""

from __future__ import annotations

import copy
import inspect
import keyword
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, get_origin

from .errors import ModuleError

Converter = Callable[[Any], Any]

_MUTABLE_DEFAULTS = (list, dict, set, bytearray)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def _not_finalized(value: Any) -> Any:
    raise ModuleError(
        f"{type(value).__name__} is not part of a loaded module yet (its module has not been finalized)"
    )


class RecordInfo:
    """Field layout and tuple converters of one record class."""

    __slots__ = ("cls", "defaults", "fields", "from_tuple", "to_tuple")

    def __init__(self, cls: type, fields: tuple[str, ...], defaults: dict[str, Any]) -> None:
        self.cls = cls
        self.fields = fields
        self.defaults = defaults
        self.to_tuple: Converter = _not_finalized
        self.from_tuple: Converter = _not_finalized


def record_info(cls: Any) -> RecordInfo | None:
    info = getattr(cls, "__stdb_record__", None)
    if isinstance(info, RecordInfo) and info.cls is cls:
        return info
    return None


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        head = annotation.split("[", 1)[0].strip()
        return head in ("ClassVar", "typing.ClassVar")
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def record_fields(cls: type) -> tuple[str, ...]:
    annotations = inspect.get_annotations(cls)
    return tuple(name for name, ann in annotations.items() if not _is_classvar(ann))


def make_record_class(cls: type, what: str) -> type:
    """A slotted record version of ``cls`` (``what`` names the decorator in error messages)."""
    if not isinstance(cls, type):
        raise ModuleError(f"@{what} decorates a class, got {cls!r}")
    where = f"@{what} class {cls.__qualname__}"
    for forbidden in ("__init__", "__slots__"):
        if forbidden in cls.__dict__:
            raise ModuleError(f"{where}: must not define {forbidden} (it is generated from the annotations)")
    for base in cls.__mro__[1:]:
        if base is not object and (record_info(base) is not None or inspect.get_annotations(base)):
            raise ModuleError(f"{where}: must not inherit fields from {base.__qualname__}")
    fields = record_fields(cls)
    for name in fields:
        if keyword.iskeyword(name) or name.startswith("__"):
            raise ModuleError(f"{where}: `{name}` cannot be a field name")
    defaults = {name: cls.__dict__[name] for name in fields if name in cls.__dict__}
    namespace = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in defaults and key not in ("__dict__", "__weakref__")
    }
    namespace["__slots__"] = fields
    namespace["__match_args__"] = fields
    namespace["__hash__"] = None  # mutable records are not hashable
    namespace["__init__"] = _make_init(cls.__qualname__, fields, defaults)
    namespace["__eq__"] = _make_eq(fields)
    namespace["__repr__"] = _make_repr(fields)
    namespace["__sats_tuple__"] = _sats_tuple
    record = type(cls)(cls.__name__, cls.__bases__, namespace)
    record.__qualname__ = cls.__qualname__
    record.__stdb_record__ = RecordInfo(record, fields, defaults)  # type: ignore[attr-defined]  # the attribute is added to the class made here
    return record


def _sats_tuple(self: Any) -> tuple[Any, ...]:
    # lets the SATS codecs and JSON accept record objects where a product value is expected
    return type(self).__stdb_record__.to_tuple(self)  # type: ignore[no-any-return]  # to_tuple is generated code, typed Any


def _exec(source: str, namespace: dict[str, Any], name: str) -> Any:
    exec(compile(source, f"<spacetimedb record {name}>", "exec"), namespace)
    return namespace[name]


def _make_init(qualname: str, fields: tuple[str, ...], defaults: dict[str, Any]) -> Callable[..., None]:
    params: list[str] = []
    body: list[str] = []
    namespace: dict[str, Any] = {"_MISSING": MISSING, "_copy": copy.copy}
    seen_default = False
    keyword_only = False
    for name in fields:
        if name in defaults:
            seen_default = True
            default = defaults[name]
            namespace[f"_d_{name}"] = default
            if isinstance(default, _MUTABLE_DEFAULTS):
                # each record gets its own copy, as a fresh literal would
                params.append(f"{name}=_MISSING")
                body.append(f"    self.{name} = _copy(_d_{name}) if {name} is _MISSING else {name}")
                continue
            params.append(f"{name}=_d_{name}")
        else:
            if seen_default and not keyword_only:
                # a field without a default after one with a default can only be passed by keyword
                params.append("*")
                keyword_only = True
            params.append(name)
        body.append(f"    self.{name} = {name}")
    source = (
        f"def __init__(self{''.join(', ' + p for p in params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    )
    init = _exec(source, namespace, "__init__")
    init.__qualname__ = f"{qualname}.__init__"
    return init  # type: ignore[no-any-return]  # generated by exec, typed Any


def _make_eq(fields: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    mine = "".join(f"self.{f}, " for f in fields)
    theirs = "".join(f"other.{f}, " for f in fields)
    source = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is not self.__class__:\n"
        "        return NotImplemented\n"
        f"    return ({mine}) == ({theirs})\n"
    )
    return _exec(source, {}, "__eq__")  # type: ignore[no-any-return]  # generated by exec, typed Any


def _make_repr(fields: tuple[str, ...]) -> Callable[[Any], str]:
    parts = ", ".join(f"{f}={{self.{f}!r}}" for f in fields)
    source = f"def __repr__(self):\n    return f'{{type(self).__name__}}({parts})'\n"
    return _exec(source, {}, "__repr__")  # type: ignore[no-any-return]  # generated by exec, typed Any


def install_converters(
    info: RecordInfo, to_converters: list[Converter | None], from_converters: list[Converter | None]
) -> None:
    """Generate ``info.to_tuple`` / ``info.from_tuple``; a ``None`` converter copies the field as it is."""
    fields = info.fields
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": info.cls}
    if all(c is None for c in to_converters):
        if len(fields) >= 2:
            info.to_tuple = attrgetter(*fields)  # returns the tuple directly
        else:
            items = "".join(f"o.{f}," for f in fields)
            info.to_tuple = _exec(f"def to_tuple(o):\n    return ({items})\n", namespace, "to_tuple")
    else:
        field_reads: list[str] = []
        for i, (name, conv) in enumerate(zip(fields, to_converters, strict=True)):
            if conv is None:
                field_reads.append(f"o.{name}")
            else:
                namespace[f"_to{i}"] = conv
                field_reads.append(f"_to{i}(o.{name})")
        source = f"def to_tuple(o):\n    return ({', '.join(field_reads)},)\n"
        info.to_tuple = _exec(source, namespace, "to_tuple")
    lines = ["def from_tuple(t):", "    o = _new(_cls)"]
    if fields and all(c is None for c in from_converters):
        lines.append(f"    {', '.join('o.' + f for f in fields)}, = t")
    else:
        for i, (name, conv) in enumerate(zip(fields, from_converters, strict=True)):
            if conv is None:
                lines.append(f"    o.{name} = t[{i}]")
            else:
                namespace[f"_from{i}"] = conv
                lines.append(f"    o.{name} = _from{i}(t[{i}])")
    lines.append("    return o")
    info.from_tuple = _exec("\n".join(lines) + "\n", namespace, "from_tuple")
