"""Typed settings from dataclasses: defaults < TOML file < environment < overrides.

Declare settings as (frozen) dataclasses and load them once, in the CLI entry
point::

    @dataclass(frozen=True)
    class S3Settings:
        endpoint_url: URL | None = None
        part_size: ByteSize = ByteSize("64MiB")

    @dataclass(frozen=True)
    class Settings:
        storage_url: URL = URL("file:///var/lib/etl")
        timeout: timedelta = timedelta(seconds=30)
        db_password: Secret | None = None
        s3: S3Settings = field(default_factory=S3Settings)

    settings = load_settings(Settings, toml_path="etl.toml", overrides={"timeout": "90s"})

Sources, lowest precedence first:

1. the dataclass defaults;
2. the TOML file (tables for nested dataclasses); an unknown key is an error;
3. the environment: ``ETL_TIMEOUT``, ``ETL_S3__PART_SIZE`` (``__`` nests; the
   prefix is configurable). An empty or blank variable counts as unset: the
   TOML file's value, else the default, applies (:func:`env_value`); an
   explicitly empty value (``tags = []``) is said in the TOML file. The
   environment is shared with other programs, so
   an ``ETL_*`` variable that names no setting is ignored, with a warning
   logged when it looks like a misspelt setting (``ETL_S3__PART_SIZ``) or nests
   (``__``) into a table the settings do not have;
4. explicit overrides (e.g. from command-line flags): a mapping with nested
   dicts or dotted keys (``{"s3.part_size": "1GiB"}``); ``None`` values mean
   "not given" so optional flags can be passed through as they are.

Every invalid or missing field is reported at once in one
:class:`~etl_core.errors.ConfigError`, each :class:`~etl_core.errors.FieldError`
saying where the value came from (``etl.toml:3: key s3.part_size``,
``env ETL_TIMEOUT``, ``override timeout``, ``default``).

Supported field types: ``str``, ``int``, ``float``, ``bool`` (true/false, 1/0,
yes/no, on/off), :class:`~pathlib.Path` (``~`` expanded), :class:`URL`,
:class:`~datetime.timedelta` (``"90s"``, ``"1h30m"``, plain numbers are
seconds), :class:`~etl_core.units.ByteSize` (``"64MiB"``, ``"1.5GB"``),
:class:`~etl_core.secrets.Secret` (``env:NAME`` / ``file:/path`` only), enums,
``Literal[...]`` choices, ``list[X]`` and ``tuple[X, ...]`` (TOML arrays or
comma-separated text), ``X | None`` (an empty string in the TOML file or an
override means ``None``) and
nested dataclasses. For declarative files (dataset contracts) also:

* ``list[D]`` / ``tuple[D, ...]`` of a dataclass ``D``: a TOML array of tables
  (``[[checks]]``) or an array of inline tables; each item is built with the
  same rules (unknown keys, missing fields and ``__post_init__`` errors are
  reported as ``checks[2].severity`` with the item's own line). When ``D`` has
  a ``name`` field, a table of named tables works too (``[enrich.stores]``
  becomes an item named ``stores``, its errors reported as ``enrich.stores.on``);
* a class with a ``from_config(value)`` classmethod: the value as the source
  gave it is handed to it, and its ``ValueError`` is reported on the field
  (for small value types with their own syntax, such as ``"0.5%"``);
* ``dict[str, X]``: a TOML table with free keys, each value coerced to ``X``;
* ``typing.Any``: the value exactly as the source gave it (a TOML table stays a
  ``dict``), for sections another component interprets.

``env_prefix=None`` reads no field from the environment (the mapping still
resolves ``env:`` secret references), for files that must say everything.
``env_aliases`` lets a field also be read from a conventional, unprefixed
variable (``{"database_url": "DATABASE_URL"}``) when its own is not set (an
empty or blank one counts as unset); an empty conventional variable counts as
unset too.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import logging
import os
import re
import types
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from etl_core.config_files import read_toml
from etl_core.errors import ConfigError, ConfigFileError, FieldError, InvalidSettingError
from etl_core.redaction import mask_query_params, mask_url_password, redact_text
from etl_core.secrets import InvalidSecretReferenceError, Secret
from etl_core.units import (
    ByteSize,
    format_byte_size,
    format_duration,
    parse_byte_size,
    parse_duration,
)

__all__ = [
    "URL",
    "DatabaseURL",
    "PushgatewayURL",
    "ResultBackendURL",
    "env_value",
    "env_variables",
    "load_settings",
    "load_settings_with_sources",
    "redacted_dict",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SOURCE = "default"


# ----------------------------------------------------------------------- URL

_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://", re.ASCII)


class URL(str):
    """An absolute URL (``scheme://...``), kept as the exact text given.

    It is a ``str``, so it passes straight to clients that want one; it adds
    :attr:`scheme` and a repr that masks a password in the user-info part.

    Raises:
        ValueError: the text has no ``scheme://`` prefix, nothing after it, or whitespace.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> URL:
        """Validate and wrap ``value``."""
        if not isinstance(value, str) or not _URL_PREFIX.match(value):
            raise ValueError(
                "expected an absolute URL (scheme://host...), as 'https://minio:9000' or "
                "'redis://host:6379/0'"
            )
        if value.split("://", 1)[1] == "" or any(ch.isspace() for ch in value):
            raise ValueError(
                "expected an absolute URL with something after 'scheme://' and no spaces"
            )
        return super().__new__(cls, value)

    @property
    def scheme(self) -> str:
        """The scheme, lower-cased (``s3``, ``file``, ``postgresql``)."""
        return self.split("://", 1)[0].lower()

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``, for logs and display: the one in
        its user-info part (all of a database or broker URL's up to its last ``@``: an
        unencoded ``/``, ``?`` or ``#`` in the password,
        :data:`~etl_core.redaction.USERINFO_TO_LAST_AT`), and the value of a query
        parameter naming a secret (``postgresql://etl@db/etl?password=…``, which libpq
        reads too); otherwise as written."""
        return mask_query_params(mask_url_password(str(self)))

    def __repr__(self) -> str:
        return f"URL({self.redacted()!r})"


DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")
"""The database URL schemes the platform's database door (the schema package) opens."""


class DatabaseURL(URL):
    """A database URL: ``postgresql://``, ``postgres://`` or ``sqlite:///``.

    Checked when the settings are read, so an unsupported scheme is a configuration error
    naming the setting and where it came from, before any work; the schema package
    parses the rest when it connects.

    Raises:
        ValueError: not an absolute URL, or its scheme is not one of :data:`DATABASE_SCHEMES`.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> DatabaseURL:
        """Validate and wrap ``value``."""
        scheme = URL(value).scheme  # an absolute URL first
        if scheme not in DATABASE_SCHEMES:
            expected = ", ".join(f"{name}://" for name in DATABASE_SCHEMES)
            raise ValueError(
                f"database URL scheme {scheme!r} is not supported; expected one of {expected}"
            )
        return str.__new__(cls, value)

    @classmethod
    def from_config(cls, value: object) -> DatabaseURL:
        """Read from a settings source (text); its ``ValueError`` names what was expected."""
        return _url_from_config(cls, value, "a database URL such as 'postgresql://user@host/db'")


BARE_RESULT_BACKENDS = ("rpc",)
"""Result backends named by their scheme alone (``rpc://``: RabbitMQ's reply queues)."""


class ResultBackendURL(URL):
    """A Celery result backend: an absolute URL (``redis://host:6379/0``), or ``rpc://``,
    which names no host (the results travel over the broker's connection).

    ``disabled://`` is refused: a followed run waits for every unit's result, and a run
    that does not wait (``--no-wait``) keeps none whatever the setting.

    Raises:
        ValueError: not an absolute URL, or ``disabled://``.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> ResultBackendURL:
        """Validate and wrap ``value``."""
        if isinstance(value, str) and value.lower() in (f"{s}://" for s in BARE_RESULT_BACKENDS):
            return str.__new__(cls, value)
        if isinstance(value, str) and value.lower().startswith("disabled://"):
            raise ValueError(
                "disabled:// keeps no results, and a followed run waits for each unit's: "
                "leave it unset (the broker's Redis, rpc:// on RabbitMQ) or set redis://…"
            )
        return str.__new__(cls, URL(value))

    @classmethod
    def from_config(cls, value: object) -> ResultBackendURL:
        """Read from a settings source (text); its ``ValueError`` names what was expected."""
        return _url_from_config(
            cls, value, "a result backend such as 'redis://host:6379/0' or 'rpc://'"
        )


U = TypeVar("U", bound=URL)


PUSHGATEWAY_URL_RULE = (
    "expected the Pushgateway as http://host:port or https://host:port "
    "(https://user:password@host:9091 for Basic authentication)"
)


PUSHGATEWAY_UNENCODED = (
    "an '@' after the host: percent-encode a '/', '?' or '#' in the password "
    "('/' as %2F, '?' as %3F, '#' as %23, '@' as %40)"
)


class PushgatewayURL(URL):
    """A Prometheus Pushgateway: ``http://`` or ``https://`` with a host.

    Checked when the settings are read: another scheme would run the whole job and then
    only warn that its metrics were not exported.

    Raises:
        ValueError: :data:`PUSHGATEWAY_URL_RULE` (never repeating the text: it may hold a
            password).
    """

    __slots__ = ()

    def __new__(cls, value: str) -> PushgatewayURL:
        """Validate and wrap ``value``."""
        try:
            parts = urlsplit(value) if isinstance(value, str) else None
            usable = (
                parts is not None
                and "://" in value
                and parts.scheme.lower() in ("http", "https")
                and bool(parts.hostname)
            )
        except ValueError:  # an unbalanced [ of an IPv6 host
            usable = False
        if not usable:
            raise ValueError(PUSHGATEWAY_URL_RULE)
        if "@" in value.split("://", 1)[1][len(urlsplit(value).netloc) :]:
            # an '@' after what urllib reads as the host: a password holding a '/', '?' or
            # '#' (https://etl:pa/ss@pgw), its start read as the host's port and each push
            # failing quoting it
            raise ValueError(f"{PUSHGATEWAY_URL_RULE}: {PUSHGATEWAY_UNENCODED}")
        return str.__new__(cls, URL(value))

    @classmethod
    def from_config(cls, value: object) -> PushgatewayURL:
        """Read from a settings source (text); its ``ValueError`` names what was expected."""
        return _url_from_config(cls, value, PUSHGATEWAY_URL_RULE.removeprefix("expected "))


def _url_from_config(cls: type[U], value: object, expected: str) -> U:
    """``value`` from a settings source as ``cls``; a ``ValueError`` names ``expected`` and
    never repeats the text (it may hold a password)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected {expected}, got {_describe(value)}")
    try:
        return cls(value.strip())
    except ValueError as exc:
        raise ValueError(str(exc)) from None


# ------------------------------------------------------------------ public API


def load_settings(
    cls: type[T],
    *,
    toml_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    env_prefix: str | None = "ETL_",
    overrides: Mapping[str, object] | None = None,
    env_aliases: Mapping[str, str] | None = None,
) -> T:
    """Build ``cls`` (a dataclass) from defaults, a TOML file, the environment and overrides.

    Args:
        cls: the settings dataclass; nested dataclass fields become TOML tables
            and ``__``-separated environment names.
        toml_path: a TOML file to read, or ``None`` for none.
        env: the environment to read; ``os.environ`` when ``None``.
        env_prefix: prefix of the variables that set fields (``ETL_``); ``None``
            to set no field from the environment.
        overrides: highest-precedence values, as nested dicts or dotted keys.
        env_aliases: dotted field name → an unprefixed variable read for it when its
            prefixed one is not set (below it, above the TOML file).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: listing every invalid, unknown or missing field and its source.
        TypeError: ``cls`` is not a dataclass or declares a field type this loader cannot fill.
    """
    settings, _ = load_settings_with_sources(
        cls,
        toml_path=toml_path,
        env=env,
        env_prefix=env_prefix,
        overrides=overrides,
        env_aliases=env_aliases,
    )
    return settings


def load_settings_with_sources(
    cls: type[T],
    *,
    toml_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    env_prefix: str | None = "ETL_",
    overrides: Mapping[str, object] | None = None,
    env_aliases: Mapping[str, str] | None = None,
    toml_section: str | None = None,
    toml_sections: Collection[str] = (),
    env_elsewhere: Callable[[], Collection[str]] | None = None,
    toml_elsewhere: Callable[[], Mapping[str, Collection[str]]] | None = None,
    toml_named_by: tuple[str, str] | None = None,
    override_sources: Mapping[str, str] | None = None,
) -> tuple[T, dict[str, str]]:
    """Like :func:`load_settings`, also returning where each field's value came from.

    A file shared by several programs gives each its own table: ``toml_sections`` names
    them all, ``toml_section`` the one this program reads. Its keys then override the
    top-level ones; the other programs' tables are skipped (theirs to check). A key
    at the top level or in this program's table that sets nothing is still an error,
    with a close match.

    An environment shared by several programs holds their variables too:
    ``env_elsewhere`` gives the ones the others read, called only when a variable
    that sets nothing here would be warned about (it then is not: a setting of
    another program is no misspelling of one of these). ``toml_elsewhere`` likewise
    gives the tables of the shared file each other program's keys belong in
    (``{"duckdb_threads": ("data_pipeline",)}``), called only for an unknown key (at the
    top level or in this program's table): one of them is refused as misplaced, naming
    its table, never "did you mean" a setting of this program it merely resembles.

    ``toml_named_by`` is the setting that chose ``toml_path``, as ``(field, source)``
    (``("ETL_SETTINGS_FILE", "env ETL_SETTINGS_FILE")``): a file that cannot be read is refused
    naming it too, so the operator knows what to correct.

    ``override_sources`` names where an override came from, by dotted name (a command-line
    flag: ``flag --port``); an override it does not name is ``override <name>``.

    Returns:
        ``(settings, sources)``, ``sources`` mapping each dotted field name
        (``s3.part_size``) to ``"default"``, ``"<file>:<line>: key <name>"``,
        ``"env <VARIABLE>"``, an ``override_sources`` one or ``"override <name>"``.
        Handy for a ``config show``.
    """
    schema = _Schema.of(cls)
    environ = os.environ if env is None else env
    errors: list[FieldError] = []
    raw: dict[str, _Raw] = {}
    if toml_path is not None:
        sections = _Sections(toml_section, tuple(toml_sections), toml_elsewhere)
        raw.update(_read_toml(Path(toml_path), schema, errors, sections, toml_named_by))
    if env_prefix is not None:
        prefixed = _read_env(environ, env_prefix, schema, env_elsewhere)
        raw.update(prefixed)
        raw.update(_read_aliases(environ, env_aliases or {}, schema, prefixed))
    if overrides:
        raw.update(_read_overrides(overrides, schema, errors, override_sources or {}))
    builder = _Builder(raw, environ, env_prefix, errors)
    settings = builder.build(schema, "", defaults=None)
    if errors:
        count = len(errors)
        raise ConfigError(
            f"invalid settings for {cls.__name__}: {count} error{'s' if count > 1 else ''}",
            errors,
        )
    return settings, builder.sources


def redacted_dict(settings: object) -> dict[str, Any]:
    """A plain dict of ``settings`` for printing or logging, with no secret in it.

    Secrets appear as their reference (``env:DB_PASSWORD``), URL passwords as
    ``***``; durations and byte sizes in the text form the loader reads
    (``"1h30m"``, ``"64MiB"``), paths as strings, enums as their values, so the
    result can be written back as TOML or JSON.

    Raises:
        TypeError: ``settings`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
        raise TypeError(f"expected a dataclass instance, got {type(settings).__name__}")
    return {
        f.name: _display(getattr(settings, f.name)) for f in dataclasses.fields(settings) if f.init
    }


def _display(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redacted_dict(value)
    if isinstance(value, Secret):
        return value.reference
    if isinstance(value, URL):
        return value.redacted()
    if isinstance(value, ByteSize):
        return format_byte_size(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return _display(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_display(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _display(item) for key, item in value.items()}
    if isinstance(value, str) and _URL_PREFIX.match(value):
        return redact_text(value)  # a URL kept as text (storage_url, also a path): its password
    return value


# --------------------------------------------------------------------- schema

_MISSING: Any = dataclasses.MISSING
_SCALARS: tuple[type, ...] = (str, int, float, bool, Path, URL, timedelta, ByteSize, Secret)


@dataclass(frozen=True)
class _Leaf:
    """A field that takes one value (anything but a nested dataclass)."""

    name: str
    path: str
    annotation: Any
    field: dataclasses.Field[Any]


@dataclass(frozen=True)
class _Schema:
    """A dataclass and its fields, nested dataclasses expanded."""

    cls: type[Any]
    path: str
    leaves: dict[str, _Leaf]
    children: dict[str, tuple[_Schema, bool, dataclasses.Field[Any]]]  # schema, optional, field

    @classmethod
    def of(cls, settings_cls: type[Any], path: str = "") -> _Schema:
        leaves: dict[str, _Leaf] = {}
        children: dict[str, tuple[_Schema, bool, dataclasses.Field[Any]]] = {}
        for f, annotation, nested, optional in _fields_of(settings_cls, path):
            dotted = f"{path}.{f.name}" if path else f.name
            if nested is not None:
                children[f.name] = (cls.of(nested, dotted), optional, f)
            else:
                leaves[f.name] = _Leaf(f.name, dotted, annotation, f)
        return cls(settings_cls, path, leaves, children)

    def names(self) -> list[str]:
        return [*self.leaves, *self.children]

    def all_leaves(self) -> Iterator[_Leaf]:
        yield from self.leaves.values()
        for child, _, _ in self.children.values():
            yield from child.all_leaves()

    def find(self, parts: list[str]) -> _Leaf | _Schema | None:
        """The leaf or nested schema at ``parts`` below this one, or ``None``."""
        head, rest = parts[0], parts[1:]
        if head in self.leaves:
            return self.leaves[head] if not rest else None
        if head in self.children:
            child = self.children[head][0]
            return child.find(rest) if rest else child
        return None


_FieldPlan = tuple[dataclasses.Field[Any], Any, type[Any] | None, bool]
"""A settings field: its annotation (``Annotated`` stripped), nested dataclass, optional."""

_PLANS: weakref.WeakKeyDictionary[type[Any], tuple[_FieldPlan, ...]] = weakref.WeakKeyDictionary()


def _fields_of(settings_cls: type[Any], path: str) -> tuple[_FieldPlan, ...]:
    """The init fields of ``settings_cls`` with their resolved types, checked once per class.

    ``get_type_hints`` evaluates every annotation: a contract's dozens of column and
    check tables would pay it per table (issue 16, start-up). ``path`` names the class's
    place in an error about an unsupported field type.
    """
    known = _PLANS.get(settings_cls)
    if known is not None:
        return known
    if not (dataclasses.is_dataclass(settings_cls) and isinstance(settings_cls, type)):
        raise TypeError(f"settings must be a dataclass, got {settings_cls!r}")
    try:
        hints = get_type_hints(settings_cls)
    except NameError as exc:
        raise TypeError(
            f"cannot resolve the field types of {settings_cls.__qualname__}: {exc}; "
            "define settings classes at module level"
        ) from exc
    plan: list[_FieldPlan] = []
    for f in dataclasses.fields(settings_cls):
        if not f.init:
            continue
        annotation = _strip_annotated(hints[f.name])
        nested, optional = _nested_dataclass(annotation)
        if nested is None:
            _check_supported(annotation, f"{path}.{f.name}" if path else f.name)
        plan.append((f, annotation, nested, optional))
    _PLANS[settings_cls] = tuple(plan)
    return _PLANS[settings_cls]


def _strip_annotated(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _optional_inner(annotation: Any) -> Any | None:
    """``X`` for ``X | None`` / ``Optional[X]``, else ``None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return _strip_annotated(args[0])
    return None


def _nested_dataclass(annotation: Any) -> tuple[type[Any] | None, bool]:
    inner = _optional_inner(annotation)
    candidate, optional = (inner, True) if inner is not None else (annotation, False)
    is_dataclass = isinstance(candidate, type) and dataclasses.is_dataclass(candidate)
    if is_dataclass and not _has_hook(candidate):  # a value type that parses itself is a leaf
        return candidate, optional
    return None, False


def _check_supported(annotation: Any, path: str) -> None:
    inner = _optional_inner(annotation)
    if inner is not None:
        annotation = inner
    origin = get_origin(annotation)
    if annotation is Any or origin is Literal:
        return
    if origin in (list, tuple):
        args = get_args(annotation)
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise TypeError(f"setting {path}: only tuple[X, ...] is supported, got {annotation!r}")
        if len(args) >= 1:
            item = _strip_annotated(args[0])
            if _is_plain_item(item) or _item_dataclass(annotation) is not None:
                return
    elif origin is dict:
        key_type, value_type = get_args(annotation) or (None, None)
        if key_type is str and _is_plain_item(_strip_annotated(value_type)):
            return
    elif annotation in _SCALARS or _is_enum(annotation) or _has_hook(annotation):
        return
    raise TypeError(
        f"setting {path}: unsupported type {annotation!r}; use str, int, float, bool, Path, "
        "URL, timedelta, ByteSize, Secret, an Enum, Literal[...], Any, list[X], "
        "tuple[X, ...], list[dataclass], dict[str, X], X | None or a nested dataclass"
    )


def _is_plain_item(item: Any) -> bool:
    """Whether ``item`` is a type a list item or dict value can be coerced to."""
    return (
        item is Any
        or item in _SCALARS
        or _is_enum(item)
        or _has_hook(item)
        or get_origin(item) is Literal
    )


def _has_hook(annotation: Any) -> bool:
    """Whether ``annotation`` is a class that parses its own values (``from_config``)."""
    return isinstance(annotation, type) and callable(getattr(annotation, "from_config", None))


def _item_dataclass(annotation: Any) -> type[Any] | None:
    """``D`` for ``list[D]`` / ``tuple[D, ...]`` (optionally ``| None``) of a dataclass ``D``."""
    inner = _optional_inner(annotation)
    if inner is not None:
        annotation = inner
    if get_origin(annotation) not in (list, tuple):
        return None
    args = get_args(annotation)
    item = _strip_annotated(args[0]) if args else None
    if isinstance(item, type) and dataclasses.is_dataclass(item):
        return item
    return None


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


# -------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _Raw:
    """A value as a source gave it, and where from.

    ``locate`` names the source of a key nested inside the value (an item of an
    array of tables), ``what`` how that source calls its keys in messages.
    """

    value: object
    source: str
    locate: Callable[[str], str] | None = None
    what: str = "key"


@dataclass(frozen=True)
class _Sections:
    """The tables of a shared settings file: the reader's own, and everyone's."""

    own: str | None = None
    every: tuple[str, ...] = ()
    elsewhere: Callable[[], Mapping[str, Collection[str]]] | None = None

    def hint(self) -> str:
        """Where a setting of another program goes (appended to an unknown-key error)."""
        if not self.every:
            return ""
        tables = ", ".join(f"[{name}]" for name in self.every)
        return f" (a setting of one lane only goes in its table: {tables})"

    def misspelt_table(self, key: str, value: object) -> str | None:
        """The refusal of a top-level table ``key`` that resembles a lane's table name
        (``[data_pipline]``): that table, instead of every key this program knows."""
        if not self.every or not isinstance(value, Mapping):
            return None
        close = difflib.get_close_matches(key, self.every, n=1, cutoff=0.8)
        if not close:
            return None
        tables = ", ".join(f"[{name}]" for name in self.every)
        return (
            f"unknown TOML table; did you mean [{close[0]}]? (the lanes' tables: {tables}; "
            "the settings in it are read by no lane)"
        )

    def misplaced(self, key: str, *, in_own: bool = False) -> str | None:
        """The refusal of ``key`` (at the top level, or in this program's own table when
        ``in_own``) when it is another program's setting: where it goes (its table),
        instead of a close match among this program's keys."""
        if self.elsewhere is None or not self.every:
            return None
        owners = [t for t in self.elsewhere().get(key, ()) if t in self.every and t != self.own]
        if not owners:
            return None
        tables = ", ".join(f"[{name}]" for name in owners)
        if len(owners) > 1:  # each of those lanes reads it from its own table only
            tables = f"the table of each lane it is for: {tables}"
        if in_own:  # the other lanes never read this table: there, it sets nothing
            return f"is a setting of {' and '.join(owners)}, not of this lane: it goes in {tables}"
        return (
            f"is a setting of {' and '.join(owners)}, not of this lane: in a file every lane "
            f"reads it goes in {tables}"
        )


def _read_toml(
    path: Path,
    schema: _Schema,
    errors: list[FieldError],
    sections: _Sections = _Sections(),
    named_by: tuple[str, str] | None = None,
) -> dict[str, _Raw]:
    try:
        # a file a setting names may be a pipe (/dev/stdin, <(…)); etl.toml found may not
        text, document = read_toml(path, pipes=named_by is not None)
    except ConfigFileError as exc:
        if named_by is None or exc.stage != "read":
            raise
        setting, origin = named_by  # the setting to correct, with where it was set
        message = f"names {path}: {exc.problem}; expected a readable settings file"
        raise ConfigFileError(
            str(path), exc.problem, errors=[FieldError(setting, message, origin)]
        ) from exc.__cause__
    lines = _toml_key_lines(text)

    def source(dotted: str) -> str:
        line = _line_of(dotted, lines)
        return f"{path}:{line}: key {dotted}" if line else f"{path}: key {dotted}"

    raw: dict[str, _Raw] = {}
    shared = {k: v for k, v in document.items() if k not in sections.every}
    count = len(errors)
    _flatten(shared, schema, raw, errors, source, "TOML key")
    hint, shared_errors = sections.hint(), len(errors)
    for index in range(count, shared_errors):  # maybe another lane's key, misplaced
        error = errors[index]
        if hint and error.message.startswith("unknown TOML key"):
            message = (
                sections.misplaced(error.field)
                or sections.misspelt_table(error.field, document.get(error.field))
                or error.message + hint
            )
            errors[index] = FieldError(error.field, message, error.source)
    own = document.get(sections.own) if sections.own else None
    if own is not None and sections.own is not None:
        prefix = sections.own
        if not isinstance(own, Mapping):
            message = (
                f"is the table of this lane's settings, expected a table, got {_describe(own)}"
            )
            errors.append(FieldError(prefix, message, source(prefix)))
        else:
            count = len(errors)
            _flatten(own, schema, raw, errors, lambda d: source(f"{prefix}.{d}"), "TOML key")
            for index in range(count, len(errors)):  # another lane's key, in the wrong table
                error = errors[index]
                if error.message.startswith("unknown TOML key"):
                    message = sections.misplaced(error.field, in_own=True) or error.message
                    errors[index] = FieldError(error.field, message, error.source)
    return raw


def _flatten(
    table: Mapping[str, object],
    schema: _Schema,
    raw: dict[str, _Raw],
    errors: list[FieldError],
    source: Callable[[str], str],
    what: str,
) -> None:
    """Map a nested table onto ``schema``'s dotted leaf names, reporting unknown keys."""
    for key, value in table.items():
        if value is None:  # overrides only: "not given"
            continue
        dotted = f"{schema.path}.{key}" if schema.path else key
        target = schema.find(key.split(".")) if key else None
        if isinstance(target, _Leaf):
            raw[target.path] = _Raw(value, source(dotted), source, what)
        elif isinstance(target, _Schema):
            if isinstance(value, Mapping):
                raw[target.path] = _Raw(value, source(dotted))  # given, even when empty
                _flatten(value, target, raw, errors, source, what)
            else:
                message = f"is a section of settings, expected a table, got {_describe(value)}"
                errors.append(FieldError(target.path, message, source(dotted)))
        else:
            errors.append(FieldError(dotted, _unknown_message(what, key, schema), source(dotted)))


def _unknown_message(what: str, key: str, schema: _Schema) -> str:
    parts = key.split(".")
    while len(parts) > 1 and parts[0] in schema.children:  # a dotted key: blame the last section
        schema = schema.children[parts.pop(0)][0]
    known = schema.names()
    close = difflib.get_close_matches(parts[0], known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    where = f" in [{schema.path}]" if schema.path else ""
    return f"unknown {what}{where}; {hint}"


_TOML_TABLE = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_TOML_ARRAY_TABLE = re.compile(r"\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")


def _toml_key_lines(text: str) -> dict[str, int]:
    """First line of each key and table, by a cheap scan good enough for messages.

    Items of arrays of tables are numbered as the builder names them:
    ``checks[0]``, ``checks[1].severity``.
    """
    lines: dict[str, int] = {}
    table: list[str] = []
    arrays: dict[str, int] = {}  # array-of-tables path -> index of its current item
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        quotes = line.count('"""') + line.count("'''")
        if in_multiline:
            in_multiline = quotes % 2 == 0
            continue
        array = _TOML_ARRAY_TABLE.match(line)
        if array:
            parts = _split_toml_key(array.group(1))
            name = ".".join(parts)
            arrays[name] = arrays.get(name, -1) + 1
            table = [*_indexed(parts[:-1], arrays), f"{parts[-1]}[{arrays[name]}]"]
            lines.setdefault(".".join(table), number)
            continue
        header = _TOML_TABLE.match(line)
        if header:
            table = _indexed(_split_toml_key(header.group(1)), arrays)
            lines.setdefault(".".join(table), number)
            continue
        key = _TOML_KEY.match(line)
        if key:
            lines.setdefault(".".join([*table, *_split_toml_key(key.group(1))]), number)
        in_multiline = quotes % 2 == 1
    return lines


def _split_toml_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def _indexed(parts: list[str], arrays: Mapping[str, int]) -> list[str]:
    """``parts`` of a table header with each array-of-tables prefix given its current index."""
    named: list[str] = []
    plain: list[str] = []
    for part in parts:
        plain.append(part)
        index = arrays.get(".".join(plain))
        named.append(part if index is None else f"{part}[{index}]")
    return named


_ITEM_INDEX = re.compile(r"\[\d+\]$")


def _line_of(dotted: str, lines: Mapping[str, int]) -> int | None:
    parts = dotted.split(".")
    while parts:  # a key set in an inline table is found at its parent's line
        line = lines.get(".".join(parts))
        if line is not None:
            return line
        if _ITEM_INDEX.search(parts[-1]):  # an item of an inline array: the array's line
            parts[-1] = _ITEM_INDEX.sub("", parts[-1])
            continue
        parts.pop()
    return None


def _env_name(prefix: str, path: str) -> str:
    return prefix + path.replace(".", "__").upper()


def env_variables(cls: type, prefix: str = "ETL_") -> frozenset[str]:
    """The environment variables that set a field of the settings dataclass ``cls``."""
    return frozenset(_env_name(prefix, leaf.path) for leaf in _Schema.of(cls).all_leaves())


def env_value(environ: Mapping[str, str], variable: str) -> str | None:
    """``variable``'s value in ``environ``, or ``None`` when it is not set, empty or blank.

    The one rule for a settings variable (``ETL_LOG_LEVEL=``, ``ETL_CONFIG_DIR="  "``): an
    empty or blank one counts as unset, so the next source (the settings file, else the
    default) applies. Compose files and Helm charts pass ``ETL_X: ${X:-}`` through, and an
    unset shell variable then arrives as an empty one. A value that must be explicitly
    empty (no exporter, an empty list) is said in the settings file (``x = []``).
    """
    value = environ.get(variable)
    return value if value is not None and value.strip() else None


def _read_env(
    environ: Mapping[str, str],
    prefix: str,
    schema: _Schema,
    elsewhere: Callable[[], Collection[str]] | None = None,
) -> dict[str, _Raw]:
    by_name = {_env_name(prefix, leaf.path): leaf.path for leaf in schema.all_leaves()}
    raw: dict[str, _Raw] = {}
    for variable in sorted(environ):
        if not variable.startswith(prefix):
            continue
        name = prefix + variable[len(prefix) :].upper()
        path = by_name.get(name)
        if path is not None:
            if env_value(environ, variable) is not None:  # empty or blank: unset
                raw[path] = _Raw(environ[variable], f"env {variable}")
        else:
            _warn_if_misspelt(variable, prefix, schema, list(by_name), elsewhere)
    return raw


def _read_aliases(
    environ: Mapping[str, str],
    aliases: Mapping[str, str],
    schema: _Schema,
    prefixed: Mapping[str, _Raw],
) -> dict[str, _Raw]:
    """Fields set by their conventional variable (``DATABASE_URL``) where their own prefixed
    variable is not set (missing, empty or blank: ``prefixed`` holds none of those); an
    empty or blank conventional variable counts as unset too."""
    raw: dict[str, _Raw] = {}
    for path, variable in aliases.items():
        if path in prefixed:
            continue
        value = env_value(environ, variable)
        if value is not None and isinstance(schema.find(path.split(".")), _Leaf):
            raw[path] = _Raw(environ[variable], f"env {variable}")
    return raw


def _warn_if_misspelt(
    variable: str,
    prefix: str,
    schema: _Schema,
    known: list[str],
    elsewhere: Callable[[], Collection[str]] | None = None,
) -> None:
    """Log a near-miss ``ETL_*`` variable, or one nesting with ``__`` (the settings'
    own spelling) into a table the settings do not have; others belong to someone else
    and stay silent, and so do the ones ``elsewhere`` says another program reads."""
    rest = variable[len(prefix) :].lower()
    close = difflib.get_close_matches(prefix + rest.upper(), known, n=1, cutoff=0.85)
    section = rest.split("__")[0]
    names_a_section = section in schema.names()
    nests = "__" in rest
    if not close and not names_a_section and not nests:
        return
    if elsewhere is not None and prefix + rest.upper() in elsewhere():
        return
    if close:
        hint = f"; did you mean {close[0]}?"
    elif nests and not names_a_section:
        tables = ", ".join(sorted(schema.children))
        hint = "; '__' nests a setting in a table, and " + (
            f"it has no table {section!r} (tables: {tables})" if tables else "it has no tables"
        )
    else:
        hint = ""
    logger.warning(
        "ignoring environment variable %s: it sets no field of %s%s",
        variable,
        schema.cls.__name__,
        hint,
    )


def _read_overrides(
    overrides: Mapping[str, object],
    schema: _Schema,
    errors: list[FieldError],
    named: Mapping[str, str],
) -> dict[str, _Raw]:
    raw: dict[str, _Raw] = {}
    _flatten(
        overrides,
        schema,
        raw,
        errors,
        lambda dotted: named.get(dotted, f"override {dotted}"),
        "override",
    )
    return raw


# ------------------------------------------------------------------- building


class _Builder:
    """Turns the merged raw values into dataclass instances, collecting every error."""

    def __init__(
        self,
        raw: Mapping[str, _Raw],
        environ: Mapping[str, str],
        env_prefix: str | None,
        errors: list[FieldError],
        locate: Callable[[str], str] | None = None,
    ) -> None:
        self.raw = raw
        self.environ = environ
        self.env_prefix = env_prefix
        self.errors = errors
        self.locate = locate
        self.sources: dict[str, str] = {}

    def build(self, schema: _Schema, prefix: str, defaults: object | None) -> Any:
        values: dict[str, Any] = {}
        failed = False
        for name, leaf in schema.leaves.items():
            value = self._leaf(leaf, defaults)
            failed = failed or value is _FAILED
            values[name] = value
        for name, (child, optional, f) in schema.children.items():
            value = self._child(child, optional, f, defaults)
            failed = failed or value is _FAILED
            values[name] = value
        if failed:
            return _FAILED
        try:
            return schema.cls(**values)
        except InvalidSettingError as exc:  # the class's own checks, each on its setting
            self._refused(schema, exc.refused)
            return _FAILED
        except ValueError as exc:  # any other validation of the dataclass's own
            where = schema.path or schema.cls.__name__
            source = self.locate(where) if self.locate and schema.path else "validation"
            self.errors.append(FieldError(where, str(exc), source))
            return _FAILED

    def _refused(self, schema: _Schema, refused: Mapping[str, str]) -> None:
        """Name each value a settings class refused, with where that value came from."""
        for name, problem in refused.items():
            leaf = schema.leaves.get(name)
            if leaf is None:  # not one of its own leaves: said on the class
                where = schema.path or schema.cls.__name__
                self.errors.append(FieldError(where, f"{name} {problem}", "validation"))
            else:
                source = self.sources.get(leaf.path, DEFAULT_SOURCE)
                self.errors.append(FieldError(leaf.path, problem, source))

    def _child(
        self, child: _Schema, optional: bool, f: dataclasses.Field[Any], defaults: object | None
    ) -> Any:
        default = _default_of(f, defaults)
        given = any(p == child.path or p.startswith(child.path + ".") for p in self.raw)
        if optional and not given and (default is None or default is _MISSING):
            self.sources[child.path] = DEFAULT_SOURCE
            return None
        nested_defaults = default if dataclasses.is_dataclass(default) else None
        return self.build(child, child.path, nested_defaults)

    def _leaf(self, leaf: _Leaf, defaults: object | None) -> Any:
        raw = self.raw.get(leaf.path)
        if raw is None:
            default = _default_of(leaf.field, defaults)
            if default is _MISSING:
                self.errors.append(FieldError(leaf.path, self._missing_message(leaf), "no source"))
                return _FAILED
            self.sources[leaf.path] = DEFAULT_SOURCE
            return default
        self.sources[leaf.path] = raw.source
        item_cls = _item_dataclass(leaf.annotation)
        if item_cls is not None and not (_optional_inner(leaf.annotation) and raw.value == ""):
            return self._items(leaf, item_cls, raw)
        try:
            return _coerce(leaf.annotation, raw.value, self.environ)
        except ValueError as exc:
            self.errors.append(FieldError(leaf.path, str(exc), raw.source))
            return _FAILED

    def _items(self, leaf: _Leaf, item_cls: type[Any], raw: _Raw) -> Any:
        """Build a ``list[D]`` field: each table of the array becomes one ``D``."""
        named = "name" in {f.name for f in dataclasses.fields(item_cls)}
        if named and isinstance(raw.value, Mapping):
            tables = _named_tables(leaf.path, raw.value)
        elif isinstance(raw.value, list | tuple):
            tables = [(f"{leaf.path}[{index}]", table) for index, table in enumerate(raw.value)]
        else:
            shape = f"[[{leaf.path}]]" + (f" or [{leaf.path}.<name>]" if named else "")
            message = f"expected an array of tables ({shape}), got {_describe(raw.value)}"
            self.errors.append(FieldError(leaf.path, message, raw.source))
            return _FAILED
        locate = raw.locate or (lambda _dotted: raw.source)
        items: list[Any] = []
        for path, table in tables:
            if not isinstance(table, Mapping):
                message = f"expected a table, got {_describe(table)}"
                self.errors.append(FieldError(path, message, locate(path)))
                items.append(_FAILED)
                continue
            schema = _Schema.of(item_cls, path)
            item_raw: dict[str, _Raw] = {}
            _flatten(table, schema, item_raw, self.errors, locate, raw.what)
            builder = _Builder(item_raw, self.environ, None, self.errors, locate)
            items.append(builder.build(schema, path, defaults=None))
            self.sources.update(builder.sources)
        if any(item is _FAILED for item in items):
            return _FAILED
        origin = get_origin(_optional_inner(leaf.annotation) or leaf.annotation)
        return items if origin is list else tuple(items)

    def _missing_message(self, leaf: _Leaf) -> str:
        section, _, name = leaf.path.rpartition(".")
        if "[" in leaf.path or self.env_prefix is None:
            where = f"in the table [{section}]" if section else "at the top"
            return f"is required: set `{name} = ...` {where} of the TOML file"
        in_toml = f"under [{section}]" if section else "at the top"
        return (
            f"is required: set `{name} = ...` {in_toml} of the TOML file, "
            f"the environment variable {_env_name(self.env_prefix, leaf.path)}, "
            f"or the override {leaf.path!r}"
        )


def _named_tables(path: str, tables: Mapping[str, object]) -> list[tuple[str, object]]:
    """``[section.<name>]`` tables as items whose ``name`` is their key."""
    items: list[tuple[str, object]] = []
    for name, table in tables.items():
        if isinstance(table, Mapping):
            table = {**table, "name": name}  # a `name = ...` inside is the key's to say
        items.append((f"{path}.{name}", table))
    return items


class _Failed:
    """Marks a value that could not be built; its error is already recorded."""


_FAILED: Any = _Failed()


def _default_of(f: dataclasses.Field[Any], defaults: object | None) -> Any:
    if defaults is not None:
        return getattr(defaults, f.name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


# ------------------------------------------------------------------ coercion

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _coerce(annotation: Any, value: object, environ: Mapping[str, str]) -> Any:
    """Turn ``value`` into ``annotation``'s type, or raise ValueError saying what was expected."""
    inner = _optional_inner(annotation)
    if inner is not None:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        return _coerce(inner, value, environ)
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin is dict:
        return _coerce_table(get_args(annotation)[1], value, environ)
    if origin is Literal:
        return _coerce_choice(list(get_args(annotation)), value)
    if origin in (list, tuple):
        items = _coerce_items(get_args(annotation)[0], value, environ)
        return items if origin is list else tuple(items)
    if _is_enum(annotation):
        return _coerce_choice(list(annotation), value)
    if _has_hook(annotation):
        return annotation.from_config(value)
    return _SCALAR_COERCERS[annotation](value, environ)


def _coerce_items(item_type: Any, value: object, environ: Mapping[str, str]) -> list[Any]:
    if isinstance(value, str):
        pieces: list[object] = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, list | tuple):
        pieces = list(value)
    else:
        raise ValueError(
            f"expected a list (an array or comma-separated text), got {_describe(value)}"
        )
    items = []
    for index, piece in enumerate(pieces):
        try:
            items.append(_coerce(_strip_annotated(item_type), piece, environ))
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    return items


def _coerce_table(value_type: Any, value: object, environ: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table, got {_describe(value)}")
    table: dict[str, Any] = {}
    for key, item in value.items():
        try:
            table[str(key)] = _coerce(_strip_annotated(value_type), item, environ)
        except ValueError as exc:
            raise ValueError(f"key {key!r}: {exc}") from None
    return table


def _coerce_choice(choices: list[Any], value: object) -> Any:
    def label(choice: Any) -> str:
        return str(choice.value) if isinstance(choice, enum.Enum) else str(choice)

    if isinstance(value, enum.Enum) and value in choices:
        return value
    for choice in choices:
        plain = choice.value if isinstance(choice, enum.Enum) else choice
        if type(value) is type(plain) and value == plain:
            return choice
    if isinstance(value, str):
        wanted = value.strip().lower()
        for choice in choices:
            names = {label(choice).lower()}
            if isinstance(choice, enum.Enum):
                names.add(choice.name.lower())
            if wanted in names:
                return choice
    expected = ", ".join(repr(label(c)) for c in choices)
    raise ValueError(f"expected one of {expected}, got {_describe(value)}")


def _coerce_str(value: object, _: Mapping[str, str]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_describe(value)}")
    return value


def _coerce_int(value: object, _: Mapping[str, str]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {_describe(value)}")


def _coerce_float(value: object, _: Mapping[str, str]) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {_describe(value)}")


def _coerce_bool(value: object, _: Mapping[str, str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(
        f"expected a boolean (true/false, 1/0, yes/no, on/off), got {_describe(value)}"
    )


def _coerce_path(value: object, _: Mapping[str, str]) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.strip():
        return Path(value.strip()).expanduser()
    raise ValueError(f"expected a file system path, got {_describe(value)}")


def _coerce_url(value: object, _: Mapping[str, str]) -> URL:
    if isinstance(value, URL):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an absolute URL (scheme://host...), got {_describe(value)}")
    return URL(value.strip())  # its error never repeats the text, which may hold a password


def _coerce_duration(value: object, _: Mapping[str, str]) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, str | int | float | timedelta):
        raise ValueError(f"expected a duration such as '90s' or '1h30m', got {_describe(value)}")
    return parse_duration(value)


def _coerce_byte_size(value: object, _: Mapping[str, str]) -> ByteSize:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a byte size such as '64MiB', got {_describe(value)}")
    return parse_byte_size(value)


def _coerce_secret(value: object, environ: Mapping[str, str]) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"expected a secret reference 'env:NAME' or 'file:/path', got {type(value).__name__}"
        )
    try:
        return Secret(value.strip(), environ=environ)
    except InvalidSecretReferenceError as exc:
        # The refused text is never repeated: it may be the secret itself.
        raise ValueError(str(exc)) from None


_SCALAR_COERCERS: dict[Any, Callable[[object, Mapping[str, str]], Any]] = {
    str: _coerce_str,
    int: _coerce_int,
    float: _coerce_float,
    bool: _coerce_bool,
    Path: _coerce_path,
    URL: _coerce_url,
    timedelta: _coerce_duration,
    ByteSize: _coerce_byte_size,
    Secret: _coerce_secret,
}


def _describe(value: object) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"
