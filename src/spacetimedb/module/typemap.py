"""From Python annotations to SATS types, and the converters between user values and canonical values.

``TypeMapper`` builds one module's typespace: every *named* type (a table's row class, a ``@type`` record, an
``enum.Enum``, a named union) gets one typespace entry and a name, and is referred to by ``RefType`` wherever it
is used; everything else (numbers, strings, lists, options, special types) is inline. Along the way it produces,
per annotation, the converters between user values (records, enum members, variant instances) and canonical
SATS values (tuples, ``SumValue``); ``None`` means "no conversion needed", which is the common, fast case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import types as pytypes
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F64,
    I64,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    UNIT,
    UUID,
    AlgebraicType,
    ArrayType,
    ConnectionId,
    Identity,
    ProductType,
    ProductTypeElement,
    RecursiveTypeError,
    RefType,
    ScheduleAt,
    SumType,
    SumTypeVariant,
    SumValue,
    TimeDuration,
    Timestamp,
    Typespace,
    Uuid,
    option,
)

from .api import Registry
from .markers import Column, ColumnMarker, IndexKind, IndexSpec, SatsScalar
from .records import Converter, RecordInfo, install_converters, record_info

_SIMPLE_TYPES: dict[Any, AlgebraicType] = {
    bool: BOOL,
    int: I64,
    float: F64,
    str: STRING,
    bytes: BYTES,
    Identity: IDENTITY,
    ConnectionId: CONNECTION_ID,
    Timestamp: TIMESTAMP,
    TimeDuration: TIME_DURATION,
    Uuid: UUID,
    ScheduleAt: SCHEDULE_AT,
}


def _datetime_to_timestamp(value: Any) -> Timestamp:
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected a datetime.datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None:
        raise ValueError(
            f"{value!r} is a naive datetime: give it a time zone, e.g. datetime.now(timezone.utc)"
        )
    return Timestamp.from_datetime(value)


def _timedelta_to_duration(value: Any) -> TimeDuration:
    if not isinstance(value, dt.timedelta):
        raise ValueError(f"expected a datetime.timedelta, got {type(value).__name__} {value!r}")
    return TimeDuration.from_timedelta(value)


def _timestamp_to_datetime(value: Timestamp) -> dt.datetime:
    return value.to_datetime()


def _duration_to_timedelta(value: TimeDuration) -> dt.timedelta:
    return value.to_timedelta()


# Python's own types with one obvious SATS type; module code sees the Python values (UTC-aware datetimes)
_NATIVE_TYPES: dict[Any, tuple[AlgebraicType, Callable[[Any], Any], Callable[[Any], Any]]] = {
    dt.datetime: (TIMESTAMP, _datetime_to_timestamp, _timestamp_to_datetime),
    dt.timedelta: (TIME_DURATION, _timedelta_to_duration, _duration_to_timedelta),
}

# what to use instead of Python types that have no single SATS spelling
_ADVICE: dict[Any, str] = {
    dict: "use a list of a @type record with key and value fields, or a table",
    tuple: "use a @type class (or a @dataclass), whose fields have names",
    set: "use list[T]",
    frozenset: "use list[T]",
    object: "a column or argument needs a concrete type",
    dt.date: "use datetime.datetime or Timestamp (a point in time, in UTC)",
    dt.time: "use datetime.timedelta or TimeDuration (e.g. since midnight)",
    decimal.Decimal: "use an integer of the smallest unit (e.g. cents: u64), or float",
    uuid.UUID: "use spacetimedb.Uuid",
    bytearray: "use bytes",
    complex: "use a @type class with two float fields",
}


class TypeMappingError(Exception):
    """An annotation that is not a SATS type; the message says which and why, the caller says where."""


@dataclass(frozen=True, slots=True)
class Mapped:
    """An annotation's SATS type (refs kept) and its value converters (None = values are already canonical)."""

    type: AlgebraicType
    to_canonical: Converter | None = None
    from_canonical: Converter | None = None


@dataclass(frozen=True, slots=True)
class ResolvedField:
    name: str  # the class's field: the accessor in module code
    mapped: Mapped
    markers: tuple[Any, ...]  # ColumnMarker / IndexKind / IndexSpec / Column found next to the type
    annotation: Any

    @property
    def canonical_name(self) -> str:
        """The name the type's element (the column) has: ``Column(name=...)``'s, else the field's."""
        return next((m.name for m in self.markers if isinstance(m, Column)), self.name)


@dataclass(frozen=True, slots=True)
class NamedType:
    name: str
    ref: int
    source: Any  # the class, enum or union it was made from


def describe(annotation: Any) -> str:
    """A readable spelling of an annotation for error messages."""
    if isinstance(annotation, type):
        return annotation.__qualname__
    if isinstance(annotation, str):
        return annotation
    text = repr(annotation)
    return text.replace("typing.", "")


def split_markers(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """Separate column markers from a column's annotation: ``Annotated[u64, PrimaryKey]`` -> (u64, (PrimaryKey,))."""
    if get_origin(annotation) is not Annotated:
        return annotation, ()
    base = annotation.__origin__
    kept: list[Any] = []
    markers: list[Any] = []
    for meta in annotation.__metadata__:
        if isinstance(meta, (ColumnMarker, IndexKind, IndexSpec, Column)):
            markers.append(meta)
        else:
            kept.append(meta)
    if kept:
        base = Annotated[(base, *kept)]
    return base, tuple(markers)


def type_hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations of a class or function (string annotations evaluated in its module)."""
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except NameError as exc:
        raise TypeMappingError(f"an annotation refers to an unknown name: {exc}") from None
    except Exception as exc:
        raise TypeMappingError(f"annotations cannot be evaluated: {type(exc).__name__}: {exc}") from None


class TypeMapper:
    """Maps the annotations of one module to SATS types in one typespace."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.typespace = Typespace()
        self.named: list[NamedType] = []
        self._refs: dict[Any, int] = {}  # id() of a named source -> typespace index
        self._mapped: dict[Any, Mapped] = {}  # named source -> Mapped (a RefType) once reserved
        self._fields: dict[type, list[ResolvedField]] = {}
        self._failed: dict[int, str] = {}  # id() of a named source -> why it cannot be mapped
        self._sources: list[Any] = []  # ids key the maps above; holding the objects keeps the ids unique

    # -- entry points ---------------------------------------------------------------------------------------

    def map(self, annotation: Any) -> Mapped:
        """The SATS type of ``annotation``; raises ``TypeMappingError``."""
        if get_origin(annotation) is Annotated:
            return self._map_annotated(annotation)
        if isinstance(annotation, (str, typing.ForwardRef)):
            raise TypeMappingError(f"unresolved forward reference `{describe(annotation)}`")
        if annotation in (None, type(None)):
            raise TypeMappingError("`None` is not a column or argument type (use Optional[T])")
        hashable = _hashable(annotation)
        simple = _SIMPLE_TYPES.get(annotation) if hashable else None
        if simple is not None:
            return Mapped(simple)
        native = _NATIVE_TYPES.get(annotation) if hashable else None
        if native is not None:
            return Mapped(*native)
        advice = _ADVICE.get(annotation) or _ADVICE.get(get_origin(annotation)) if hashable else None
        if advice is not None:
            raise TypeMappingError(f"`{describe(annotation)}` is not a column or argument type: {advice}")
        origin = get_origin(annotation)
        if origin is list:
            return self._map_list(annotation)
        if origin in (Union, pytypes.UnionType):
            return self._map_union(annotation)
        if isinstance(annotation, type):
            if issubclass(annotation, enum.Enum):
                return self._named_enum(annotation)
            info = record_info(annotation)
            if info is not None:
                return self._named_record(info)
            if dataclasses.is_dataclass(annotation):
                return self._named_dataclass(annotation)
            raise TypeMappingError(
                f"class `{annotation.__qualname__}` is not a SATS type (decorate it with @type or @table)"
            )
        if annotation is list:
            raise TypeMappingError("`list` needs an element type, e.g. list[str]")
        raise TypeMappingError(f"unsupported type annotation `{describe(annotation)}`")

    def record_fields(self, cls: type) -> list[ResolvedField]:
        """The fields of a record class with their SATS types and column markers (mapping the class first)."""
        info = record_info(cls)
        if info is None:
            raise TypeMappingError(f"`{describe(cls)}` is not a record class")
        self._named_record(info)
        return self._fields[cls]

    def mapped_fields(self, cls: type) -> list[ResolvedField]:
        """The fields of a record class mapped so far (empty if it is not a record or failed to map)."""
        return self._fields.get(cls, [])

    def inline(self, ty: AlgebraicType) -> AlgebraicType:
        """``ty`` with every ref replaced by its definition; raises ``TypeMappingError`` for recursive types."""
        try:
            return self.typespace.inline(ty)
        except RecursiveTypeError as exc:
            raise TypeMappingError(f"type `{self.name_of(exc.ref)}` is recursive") from None

    def name_of(self, ref: int) -> str:
        for named in self.named:
            if named.ref == ref:
                return named.name
        return f"&{ref}"

    # -- structure ------------------------------------------------------------------------------------------

    def _map_annotated(self, annotation: Any) -> Mapped:
        base = annotation.__origin__
        scalars = [m for m in annotation.__metadata__ if isinstance(m, SatsScalar)]
        markers = [
            m for m in annotation.__metadata__ if isinstance(m, (ColumnMarker, IndexKind, IndexSpec, Column))
        ]
        if markers:
            raise TypeMappingError(
                f"column markers ({', '.join(map(repr, markers))}) are only allowed on a table column's own type"
            )
        if len(scalars) > 1:
            raise TypeMappingError(f"conflicting number types in `{describe(annotation)}`")
        if scalars:
            scalar = scalars[0]
            expected = float if scalar.type.is_float else int
            if base is not expected:
                raise TypeMappingError(
                    f"`{scalar.alias}` annotates {expected.__name__}, not {describe(base)}"
                )
            return Mapped(scalar.type)
        return self.map(base)

    def _map_list(self, annotation: Any) -> Mapped:
        args = get_args(annotation)
        if len(args) != 1:
            raise TypeMappingError(f"`{describe(annotation)}` needs exactly one element type")
        elem = self.map(args[0])
        if elem.type == U8:
            # Array<U8> is bytes in canonical form; list[u8] gives module code a list of ints
            return Mapped(BYTES, bytes, list)
        # canonical arrays are tuples (hashable rows); module code gets lists
        return Mapped(ArrayType(elem.type), _to_array(elem.to_canonical), _from_array(elem.from_canonical))

    def _map_union(self, annotation: Any) -> Mapped:
        members = get_args(annotation)
        if type(None) in members:
            rest = tuple(m for m in members if m is not type(None))
            inner_annotation: Any = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
            inner = self.map(inner_annotation)
            to, back = inner.to_canonical, inner.from_canonical
            return Mapped(
                option(inner.type),
                None if to is None else _option_converter(to),
                None if back is None else _option_converter(back),
            )
        decl = self.registry.sum_named_for(members)
        if decl is None:
            names = " | ".join(describe(m) for m in members)
            raise TypeMappingError(
                f"the union `{names}` must be declared as a named sum: Name = spacetimedb.type('Name', {names})"
            )
        return self._named_sum(decl.name, members, decl)

    # -- named types ----------------------------------------------------------------------------------------

    def _reserve(self, source: Any, name: str) -> tuple[Mapped | None, int]:
        key = id(source)
        failure = self._failed.get(key)
        if failure is not None:
            raise TypeMappingError(failure)
        if key in self._refs:
            return self._mapped[key], self._refs[key]
        ref = self.typespace.add(UNIT).index
        self._refs[key] = ref
        self.named.append(NamedType(name, ref, source))
        return None, ref

    def _type_name(self, cls: type) -> str:
        decl = self.registry.type_decl(cls)
        return decl.name if decl is not None else cls.__name__

    def _named_record(self, info: RecordInfo) -> Mapped:
        cls = info.cls
        existing, ref = self._reserve(cls, self._type_name(cls))
        if existing is not None:
            return existing
        mapped = Mapped(RefType(ref), _record_to(info), _record_from(info))
        self._mapped[id(cls)] = mapped
        self._keepalive(cls)
        try:
            self._map_record_fields(info, ref)
        except TypeMappingError as exc:
            # later uses of the class report the same problem instead of seeming fine
            self._failed[id(cls)] = str(exc)
            raise
        return mapped

    def _map_record_fields(self, info: RecordInfo, ref: int) -> None:
        cls = info.cls
        fields = self._resolve_fields(cls, info.fields)
        self._fields[cls] = fields
        self.typespace.types[ref] = ProductType(
            tuple(ProductTypeElement(f.canonical_name, f.mapped.type) for f in fields)
        )
        install_converters(
            info, [f.mapped.to_canonical for f in fields], [f.mapped.from_canonical for f in fields]
        )

    def _named_dataclass(self, cls: type) -> Mapped:
        """A plain ``@dataclass`` as a product type: module code keeps its own instances, canonical values are
        tuples of its fields in declaration order."""
        existing, ref = self._reserve(cls, self._type_name(cls))
        if existing is not None:
            return existing
        self._keepalive(cls)
        names = tuple(f.name for f in dataclasses.fields(cls))
        to_field: list[Converter | None] = []
        from_field: list[Converter | None] = []

        def dataclass_to(value: Any) -> tuple[Any, ...]:
            if value.__class__ is not cls:
                raise ValueError(f"expected a {cls.__name__}, got {type(value).__name__} {value!r}")
            return tuple(
                v if c is None else c(v)
                for c, v in zip(to_field, [getattr(value, n) for n in names], strict=True)
            )

        def dataclass_from(values: Any) -> Any:
            return cls(
                **{n: v if c is None else c(v) for n, c, v in zip(names, from_field, values, strict=True)}
            )

        mapped = Mapped(RefType(ref), dataclass_to, dataclass_from)
        self._mapped[id(cls)] = mapped
        try:
            not_init = [f.name for f in dataclasses.fields(cls) if not f.init]
            if not_init:
                raise TypeMappingError(
                    f"dataclass `{describe(cls)}`: every field must be an __init__ argument, "
                    f"not {', '.join(not_init)} (field(init=False))"
                )
            fields = self._resolve_fields(cls, names)
        except TypeMappingError as exc:
            self._failed[id(cls)] = str(exc)
            raise
        self._fields[cls] = fields
        to_field.extend(f.mapped.to_canonical for f in fields)
        from_field.extend(f.mapped.from_canonical for f in fields)
        self.typespace.types[ref] = ProductType(
            tuple(ProductTypeElement(f.canonical_name, f.mapped.type) for f in fields)
        )
        return mapped

    def _resolve_fields(self, cls: type, names: tuple[str, ...]) -> list[ResolvedField]:
        """The named fields of a class with their SATS types and column markers, in that order."""
        hints = type_hints(cls)
        fields: list[ResolvedField] = []
        for name in names:
            if name not in hints:
                raise TypeMappingError(f"field `{name}` of `{describe(cls)}` has no annotation")
            base, markers = split_markers(hints[name])
            try:
                field_mapped = self.map(base)
            except TypeMappingError as exc:
                raise TypeMappingError(f"field `{name}` of `{describe(cls)}`: {exc}") from None
            fields.append(ResolvedField(name, field_mapped, markers, hints[name]))
        return fields

    def _named_enum(self, cls: type[enum.Enum]) -> Mapped:
        existing, ref = self._reserve(cls, self._type_name(cls))
        if existing is not None:
            return existing
        self._keepalive(cls)
        members = list(cls)
        if not members:
            raise TypeMappingError(f"enum `{describe(cls)}` has no members")
        self.typespace.types[ref] = SumType(tuple(SumTypeVariant(m.name, UNIT) for m in members))
        to_sum = {m: SumValue(i, ()) for i, m in enumerate(members)}
        by_tag = tuple(members)

        def enum_to(value: Any) -> SumValue:
            try:
                return to_sum[value]
            except (KeyError, TypeError):
                raise ValueError(f"expected a member of {cls.__name__}, got {value!r}") from None

        def enum_from(value: Any) -> Any:
            return by_tag[value[0]]

        mapped = Mapped(RefType(ref), enum_to, enum_from)
        self._mapped[id(cls)] = mapped
        return mapped

    def _named_sum(self, name: str, members: tuple[Any, ...], decl: Any) -> Mapped:
        existing, ref = self._reserve(decl, name)
        if existing is not None:
            return existing
        self._keepalive(decl)
        infos: list[RecordInfo] = []
        for member in members:
            info = record_info(member) if isinstance(member, type) else None
            if info is None:
                raise TypeMappingError(f"variant `{describe(member)}` of sum `{name}` must be a @type class")
            infos.append(info)
        tag_of = {info.cls: i for i, info in enumerate(infos)}
        variant_infos = tuple(infos)

        def sum_to(value: Any) -> SumValue:
            tag = tag_of.get(value.__class__)
            if tag is None:
                raise ValueError(f"expected a variant of {name} ({', '.join(i.cls.__name__ for i in infos)})")
            return SumValue(tag, variant_infos[tag].to_tuple(value))

        def sum_from(value: Any) -> Any:
            return variant_infos[value[0]].from_tuple(value[1])

        mapped = Mapped(RefType(ref), sum_to, sum_from)
        self._mapped[id(decl)] = mapped
        variants = tuple(SumTypeVariant(info.cls.__name__, self._named_record(info).type) for info in infos)
        self.typespace.types[ref] = SumType(variants)
        return mapped

    def _keepalive(self, source: Any) -> None:
        self._sources.append(source)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _to_array(convert: Converter | None) -> Converter:
    if convert is None:
        return tuple

    def to_array(values: Any) -> tuple[Any, ...]:
        return tuple([convert(v) for v in values])

    return to_array


def _from_array(convert: Converter | None) -> Converter:
    if convert is None:
        return list

    def from_array(values: Any) -> list[Any]:
        return [convert(v) for v in values]

    return from_array


def _option_converter(convert: Converter) -> Converter:
    def convert_option(value: Any) -> Any:
        return None if value is None else convert(value)

    return convert_option


def _record_to(info: RecordInfo) -> Converter:
    cls = info.cls

    def record_to(value: Any) -> Any:
        if value.__class__ is not cls:
            raise ValueError(f"expected a {cls.__name__}, got {type(value).__name__} {value!r}")
        return info.to_tuple(value)  # looked up per call: converters are installed after mapping

    return record_to


def _record_from(info: RecordInfo) -> Callable[[Any], Any]:
    def record_from(value: Any) -> Any:
        return info.from_tuple(value)

    return record_from
