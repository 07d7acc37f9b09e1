"""Source mappings: how one bureau's extract of one source is read, as data (one YAML each).

A mapping names the canonical source it feeds (:mod:`warehouse.contracts.canonical`) and
says which landing files belong to it (glob patterns, any names, several files a day), their
format and encoding, which header(s) carry each canonical field, how dates are spelled, the
unit of amounts, and how the bureau's words translate into the canonical vocabularies. A
data engineer onboards a bureau's extracts by writing these files, not Python.

Loading validates every file; an error names the file, the line and the key::

    penalty.yaml:14: fields.amount.unit: Input should be 'yuan' or '10k_yuan'

The registry mapping may also declare ``attributes``: columns of the bureau's export beyond the
canonical fields (licences held, business scope, premises type, floor area …). Each lands in
silver with its enterprise's SCD2 version and becomes the point-in-time model feature
``attr_<name>`` with the mapping's monotone direction and reason templates (see
:class:`Attribute`), so a bureau adds a feature without writing Python.

The ``event`` mapping declares ``events``: kinds of enterprise events beyond the canonical
sources (licences granted or revoked, awards, product recalls …), each with the bureau's words
for it (``vocabularies.kind``), a window and reason templates (:class:`EventKind`). Each kind
becomes the point-in-time model feature ``evt_<kind>``: the enterprise's events of that kind
in the window before the as-of date.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warehouse.contracts.canonical import CANONICAL, CanonicalSource
from warehouse.contracts.features import Feature

# Date spellings read when a mapping names none (Spark datetime patterns; see DATE_TOKENS).
DEFAULT_DATE_FORMATS = ("yyyy-M-d", "yyyy/M/d", "yyyyMMdd", "yyyy年M月d日", "yyyy.M.d")
EXCEL_SERIAL = "excel_serial"  # days since 1899-12-30, as Excel stores dates
DATE_TOKENS = {"yyyy": r"\d{4}", "MM": r"\d{2}", "M": r"\d{1,2}", "dd": r"\d{2}", "d": r"\d{1,2}"}
_TOKEN = re.compile("|".join(sorted(DATE_TOKENS, key=len, reverse=True)))


class MappingError(ValueError):
    """One or more mapping files are invalid; the message lists every problem found."""


def header_key(text: str | None) -> str:
    """How headers are compared: Unicode NFKC (full-width → half-width), no BOM or
    zero-width characters, whitespace collapsed, case folded."""
    bare = (text or "").replace("\ufeff", "").replace("\u200b", "")
    cleaned = unicodedata.normalize("NFKC", bare)
    return re.sub(r"\s+", " ", cleaned).strip().casefold()


def date_shape(pattern: str) -> str:
    """The regular expression a whole value must match to be read with ``pattern``; the
    shape check keeps a lenient pattern from reading a string meant for another one."""
    if pattern == EXCEL_SERIAL:
        return r"^\d{5}(\.\d+)?$"
    out, pos = [], 0
    for m in _TOKEN.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(DATE_TOKENS[m.group()])
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return "^" + "".join(out) + "$"


class FieldMap(BaseModel):
    """The header(s) of one canonical field; the first is what the bureau's export uses."""

    model_config = ConfigDict(extra="forbid")

    headers: list[str] = Field(min_length=1)
    unit: Literal["yuan", "10k_yuan"] | None = None  # amounts without a 元/万元 suffix
    date_formats: list[str] | None = None  # overrides the mapping's date_formats


ATTRIBUTE_PREFIX = "attr_"  # gold feature column of attribute x: attr_x (never a built-in's)
ATTRIBUTE_SOURCES = ("registry",)  # sources whose rows are versions of an enterprise
EVENT_PREFIX = "evt_"  # gold feature column of event kind x: evt_x
EVENT_SOURCES = ("event",)  # sources whose kinds the mapping declares
KEYWORD_JOIN = "、"  # several keywords found in one text: their values joined in mapping order
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class _Among:
    """Risky when the value (or one of its joined keywords) is one of ``values``."""

    values: frozenset[str]

    def __call__(self, v: object) -> bool:
        return bool(self.values & set(str(v).split(KEYWORD_JOIN)))


@dataclass(frozen=True)
class _Outside:
    """Risky when the number is above ``above`` or below ``below`` (either may be unset)."""

    above: float | None
    below: float | None

    def __call__(self, v: object) -> bool:
        x = float(v)  # type: ignore[arg-type]
        return (self.above is not None and x > self.above) or (
            self.below is not None and x < self.below
        )


def _anything(_v: object) -> bool:
    return True


class Attribute(BaseModel):
    """An enterprise attribute the canonical registry does not know, read from the bureau's
    own column(s); gold feature ``attr_<name>`` at each as-of date is the value of the
    enterprise's version valid then.

    ``categorical``: the cleaned text, or with ``keywords`` the keyword values whose words
    occur in the text (several joined with 、 in the mapping's order; a text naming none reads
    ``otherwise``). ``numeric``: the number in the text (thousands separators and a trailing
    unit word such as 平方米 ignored) times ``scale``. ``direction`` is the model's monotone
    constraint (numeric only); ``zh`` / ``en`` the reason templates (``{v}`` the value).
    A value can be a reason when it is in ``risky`` (categorical; default: any value), above
    ``risky_above`` or below ``risky_below`` (numeric; default: above zero for direction +1,
    else any value) — and its contribution to the score is positive."""

    model_config = ConfigDict(extra="forbid")

    headers: list[str] = Field(min_length=1)
    kind: Literal["categorical", "numeric"]
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    direction: Literal[-1, 0, 1] = 0
    keywords: dict[str, list[str]] | None = None
    otherwise: str = "其他"
    scale: float = Field(1.0, gt=0)
    fmt: str | None = None  # how a value is written into a template; default by kind
    risky: list[str] | None = None
    risky_above: float | None = None
    risky_below: float | None = None
    none_zh: str = "无记录"
    none_en: str = "no record"

    @field_validator("headers", mode="before")
    @classmethod
    def _one_header(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _by_kind(self) -> Attribute:
        numeric_only = {"scale": self.scale != 1.0, "risky_above": self.risky_above is not None,
                        "risky_below": self.risky_below is not None}  # fmt: skip
        categorical_only = {"keywords": self.keywords is not None, "risky": self.risky is not None}
        if self.kind == "categorical":
            if self.direction != 0:
                raise ValueError("a categorical attribute has no order: direction must be 0")
            if wrong := [k for k, given in numeric_only.items() if given]:
                raise ValueError(f"{wrong} apply to numeric attributes only")
        elif wrong := [k for k, given in categorical_only.items() if given]:
            raise ValueError(f"{wrong} apply to categorical attributes only")
        for key in ("zh", "en", "none_zh", "none_en"):
            try:
                getattr(self, key).format(v="1", code="1")
            except (KeyError, IndexError, ValueError) as exc:
                msg = f"{key}: a template may only name {{v}} and {{code}} ({exc})"
                raise ValueError(msg) from None
        try:
            self.value_format.format(1.5 if self.kind == "numeric" else "x")
        except (KeyError, IndexError, ValueError) as exc:
            msg = f"fmt: {self.fmt!r} cannot write a {self.kind} value ({exc})"
            raise ValueError(msg) from None
        words: dict[str, str] = {}
        for value, spelled in (self.keywords or {}).items():
            if not spelled:
                raise ValueError(f"keywords.{value}: list at least one word")
            for w in spelled:
                other = words.setdefault(header_key(w), value)
                if other != value:
                    raise ValueError(f"keywords: {w!r} is a word of both {other} and {value}")
        if self.keywords and self.risky:
            known = {*self.keywords, self.otherwise}
            if bad := sorted(set(self.risky) - known):
                raise ValueError(f"risky: {bad} are not keyword values {sorted(known)}")
        return self

    @property
    def value_format(self) -> str:
        return self.fmt or ("{}" if self.kind == "categorical" else "{:,.6g}")

    def feature(self, name: str) -> Feature:
        """The catalogue entry of this attribute's gold feature ``attr_<name>``."""
        if self.kind == "categorical":
            risky = _Among(frozenset(self.risky)) if self.risky is not None else _anything
        elif self.risky_above is not None or self.risky_below is not None:
            risky = _Outside(self.risky_above, self.risky_below)
        else:
            risky = None if self.direction > 0 else _anything  # +1: above zero (Feature's rule)
        return Feature(
            ATTRIBUTE_PREFIX + name,
            "attribute",
            self.direction,
            self.zh,
            self.en,
            self.value_format,
            categorical=self.kind == "categorical",
            none_zh=self.none_zh,
            none_en=self.none_en,
            risky=risky,
        )


class EventKind(BaseModel):
    """A kind of enterprise event the mapping declares; gold feature ``evt_<kind>`` at each
    as-of date T is the number of the enterprise's events of this kind dated in the
    ``window_days`` before T and known (reported) before T.

    ``direction`` is the model's monotone constraint: +1 (the default) when more such events
    never lower the risk (a licence revoked), 0 when the model may learn either way (a licence
    granted). Only a +1 kind can be a reason, when its count is above zero; ``zh`` / ``en``
    are the reason templates (``{v}`` the count)."""

    model_config = ConfigDict(extra="forbid")

    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    direction: Literal[0, 1] = 1
    window_days: int = Field(365, ge=1, le=3660)

    @model_validator(mode="after")
    def _templates(self) -> EventKind:
        for key in ("zh", "en"):
            try:
                getattr(self, key).format(v="1")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{key}: a template may only name {{v}} ({exc})") from None
        return self

    def feature(self, name: str) -> Feature:
        """The catalogue entry of this kind's gold feature ``evt_<name>``."""
        return Feature(EVENT_PREFIX + name, "event", self.direction, self.zh, self.en)


class CsvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    # the character that escapes a quote inside a quoted field; default the quote itself
    # ("" as Excel and RFC 4180 write it); "\\" for exports that write \"
    escape: str | None = Field(None, min_length=1, max_length=1)


class XlsxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sheet: str | None = None  # None: the first sheet
    header_row: int | Literal["auto"] = "auto"  # 1-based; auto: the first row naming the fields


class Delivery(BaseModel):
    """When the source delivers: a missing expected delivery gets a ledger row and a line in
    the source's rectification report; the daily DAG waits ``wait_hours`` for it."""

    model_config = ConfigDict(extra="forbid")

    expected: Literal["daily", "weekdays", "none"] = "none"
    wait_hours: float = Field(12.0, ge=0)

    def expects(self, day: date) -> bool:
        """True when a delivery is due on ``day``."""
        if self.expected == "daily":
            return True
        return self.expected == "weekdays" and day.weekday() < 5


class SourceMapping(BaseModel):
    """One bureau's extract of one canonical source."""

    model_config = ConfigDict(extra="forbid")

    source: str
    title_zh: str
    title_en: str
    owner_zh: str  # the department that receives the rectification report
    owner_en: str = ""
    files: list[str] = Field(min_length=1)  # glob patterns on file names
    format: Literal["auto", "csv", "xlsx"] = "auto"  # auto: by the file's extension
    encoding: str = "auto"  # auto: UTF-8 (with or without BOM) or GB18030, detected per file
    csv: CsvOptions = Field(default_factory=CsvOptions)
    xlsx: XlsxOptions = Field(default_factory=XlsxOptions)
    fields: dict[str, FieldMap]
    date_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_DATE_FORMATS))
    vocabularies: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    key: list[str] | None = None
    delivery: Delivery = Field(default_factory=Delivery)
    attributes: dict[str, Attribute] = Field(default_factory=dict)
    events: dict[str, EventKind] = Field(default_factory=dict)
    path: str = Field("", exclude=True)  # the file it was loaded from

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `field: 统一社会信用代码` or `field: [a, b]` is short for `field: {headers: [...]}`
        if not isinstance(value, dict):
            return value
        out = {}
        for k, v in value.items():
            if isinstance(v, str):
                v = {"headers": [v]}
            elif isinstance(v, list):
                v = {"headers": v}
            out[k] = v
        return out

    @field_validator("date_formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        for f in value:
            if f != EXCEL_SERIAL and not _TOKEN.search(f):
                raise ValueError(f"{f!r} is not a date pattern (use yyyy, M, MM, d, dd)")
        return value

    @model_validator(mode="after")
    def _against_canonical(self) -> SourceMapping:
        spec = CANONICAL.get(self.source)
        if spec is None:
            raise ValueError(f"source: must be one of {', '.join(CANONICAL)}, got {self.source!r}")
        unknown = sorted(set(self.fields) - set(spec.fields))
        if unknown:
            raise ValueError(f"fields: {unknown} are not fields of {spec.name}: {spec.fields}")
        missing = [f for f in spec.required if f not in self.fields]
        if missing:
            raise ValueError(f"fields: must map the required fields {missing}")
        seen: dict[str, str] = {}
        for name, fm in self.fields.items():
            if fm.unit and name not in spec.amounts:
                raise ValueError(f"fields.{name}.unit: only amount fields {spec.amounts} have one")
            if fm.date_formats is not None and name not in spec.dates:
                raise ValueError(f"fields.{name}.date_formats: {name} is not a date field")
            for h in fm.headers:
                other = seen.setdefault(header_key(h), name)
                if other != name:
                    raise ValueError(
                        f"fields.{name}: header {h!r} is given for both {other} and {name}"
                    )
        for name, vocab in self.vocabularies.items():
            if name not in self.fields:
                raise ValueError(f"vocabularies.{name}: {name} is not a mapped field")
            canon = spec.vocabularies.get(name)
            if canon is not None and canon.declared:
                if bad := sorted(set(vocab) - set(self.events)):
                    raise ValueError(
                        f"vocabularies.{name}: {bad} are not kinds declared in events "
                        f"{list(self.events)}"
                    )
            elif canon is not None and (bad := sorted(set(vocab) - set(canon.values))):
                raise ValueError(
                    f"vocabularies.{name}: {bad} are not canonical values {list(canon.values)}"
                )
            words: dict[str, str] = {}
            for value, spelled in vocab.items():
                for w in spelled:
                    other = words.setdefault(header_key(w), value)
                    if other != value:
                        raise ValueError(f"vocabularies.{name}: {w!r} means {other} and {value}")
        for name, canon in spec.vocabularies.items():
            if canon.closed and name in self.fields and name not in self.vocabularies:
                values = list(self.events) if canon.declared else list(canon.values)
                raise ValueError(f"vocabularies.{name} is required (values: {values})")
        if self.key is not None and tuple(self.key) != spec.key:
            raise ValueError(f"key: must be the canonical key {list(spec.key)} of {spec.name}")
        if self.attributes and self.source not in ATTRIBUTE_SOURCES:
            raise ValueError(
                f"attributes: only the {', '.join(ATTRIBUTE_SOURCES)} mapping declares "
                f"enterprise attributes, not {self.source}"
            )
        if self.events and self.source not in EVENT_SOURCES:
            raise ValueError(
                f"events: only the {', '.join(EVENT_SOURCES)} mapping declares event kinds, "
                f"not {self.source}"
            )
        if self.source in EVENT_SOURCES:
            if not self.events:
                raise ValueError("events: declare at least one kind of event")
            worded = self.vocabularies.get("kind", {})
            for name in self.events:
                if not _SNAKE.match(name):
                    raise ValueError(f"events.{name}: a name is snake_case (a-z, 0-9, _)")
                if not worded.get(name):
                    raise ValueError(
                        f"events.{name}: vocabularies.kind lists no word for it (none could land)"
                    )
        for name, attr in self.attributes.items():
            if not _SNAKE.match(name):
                raise ValueError(f"attributes.{name}: a name is snake_case (a-z, 0-9, _)")
            for h in attr.headers:
                other = seen.setdefault(header_key(h), f"attributes.{name}")
                if other != f"attributes.{name}":
                    raise ValueError(f"attributes.{name}: header {h!r} is already read as {other}")
        return self

    @property
    def canonical(self) -> CanonicalSource:
        return CANONICAL[self.source]

    def attribute_features(self) -> tuple[Feature, ...]:
        """The gold features of the declared attributes (``attr_<name>``), in mapping order."""
        return tuple(a.feature(n) for n, a in self.attributes.items())

    def declared_features(self) -> tuple[Feature, ...]:
        """The gold features this mapping declares: its attributes', then its event kinds'
        (``evt_<kind>``), in mapping order."""
        return (*self.attribute_features(), *(k.feature(n) for n, k in self.events.items()))

    def matches(self, file_name: str) -> bool:
        """True when ``file_name`` (no folder) fits one of the ``files`` patterns."""
        name = file_name.casefold()
        return any(fnmatch(name, p.casefold()) for p in self.files)

    def file_format(self, file_name: str) -> str:
        """csv or xlsx: the declared format, else by extension (.xlsx/.xlsm → xlsx)."""
        if self.format != "auto":
            return self.format
        return "xlsx" if file_name.casefold().endswith((".xlsx", ".xlsm")) else "csv"

    def formats_of(self, field: str) -> list[str]:
        """The date spellings read for ``field``."""
        fm = self.fields.get(field)
        return list(fm.date_formats) if fm and fm.date_formats is not None else self.date_formats

    def unit_of(self, field: str) -> str:
        """The unit of a bare number in amount ``field`` (yuan unless the mapping says)."""
        fm = self.fields.get(field)
        return (fm.unit if fm else None) or "yuan"

    def header_of(self, field: str) -> str:
        """The header the bureau's export uses for ``field`` (its first alias)."""
        return self.fields[field].headers[0] if field in self.fields else field

    def word_for(self, field: str, value: str) -> str:
        """The bureau's word for canonical ``value`` of ``field`` (the first one listed).
        ValueError when the mapping lists none: such a value could not land."""
        listed = self.vocabularies.get(field, {}).get(value)
        if not listed:
            raise ValueError(f"{self.path or self.source}: vocabularies.{field} lists no word "
                             f"for {value!r}")  # fmt: skip
        return listed[0]

    def words(self, field: str) -> dict[str, str]:
        """The bureau's word → canonical value of ``field`` (empty when not mapped)."""
        return {w: value for value, ws in self.vocabularies.get(field, {}).items() for w in ws}


def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """1-based line of every key path in a YAML document."""
    index: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                index[(*path, k.value)] = k.start_mark.line + 1
                walk(v, (*path, k.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                index[(*path, i)] = v.start_mark.line + 1
                walk(v, (*path, i))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return index


def _located(path: Path, text: str, error: ValidationError) -> list[str]:
    index = _line_index(text)
    out = []
    for e in error.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        line = 1
        for n in range(len(loc), 0, -1):
            if loc[:n] in index:
                line = index[loc[:n]]
                break
        where = ".".join(str(x) for x in loc)
        msg = e["msg"].removeprefix("Value error, ")
        if not loc:  # a check across keys: its message starts with the key path it is about
            head, sep, rest = msg.partition(": ")
            keys = tuple(head.split("."))
            if sep and keys in index:
                line, where, msg = index[keys], head, rest
        out.append(f"{path.name}:{line}: {where or '(top level)'}: {msg}")
    return out


def load_mapping(path: Path) -> SourceMapping:
    """One mapping file, validated; MappingError naming file, line and key otherwise."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise MappingError(f"{path.name}:{line}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}:1: a mapping file holds one YAML mapping (key: value)")
    try:
        mapping = SourceMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError("\n".join(_located(path, text, exc))) from None
    mapping.path = str(path)
    return mapping


def load_mappings(folder: str | Path) -> dict[str, SourceMapping]:
    """Every ``*.yaml`` / ``*.yml`` mapping in ``folder`` by source; one file per source.
    MappingError listing every invalid file (all are checked before raising)."""
    root = Path(folder)
    if not root.is_dir():
        raise MappingError(f"no source-mapping folder at {root}")
    found: dict[str, SourceMapping] = {}
    problems: list[str] = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        try:
            m = load_mapping(path)
        except MappingError as exc:
            problems.append(str(exc))
            continue
        if m.source in found:
            problems.append(
                f"{path.name}:1: source: {m.source} is already mapped by "
                f"{Path(found[m.source].path).name} (one file per source)"
            )
            continue
        found[m.source] = m
    if problems:
        raise MappingError("\n".join(problems))
    if not found:
        raise MappingError(f"no source mappings (*.yaml) in {root}")
    return {name: found[name] for name in CANONICAL if name in found}
