"""Strategy parameters: declared once, used for validation, ``show``, dicts and strings.

A strategy declares its parameters as dataclass fields made with :func:`param`. Everything
else — type and range checks, ``sage-llm strategies show``, ``to_dict``/``from_dict`` and the
``"ngram:n=5,num_speculative_tokens=4"`` form used on command lines and in config files — is
derived here from those fields, so the declaration is the only place a parameter is described.

Strategies that are not dataclasses (a plain ``__init__(self, **kwargs)`` as in the seed's
``MyCustomStrategy``) still work: their parameters are read from the ``__init__`` signature,
without range checks.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from sage.llm.errors import InvalidParameterError, StrategySpecError

_META_KEY = "sage.llm.param"
MISSING: Any = dataclasses.MISSING


@dataclass(frozen=True)
class ParamSpec:
    """Everything known about one parameter of a strategy."""

    name: str
    annotation: Any
    default: Any = MISSING
    doc: str = ""
    ge: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    draft_model: bool = False
    """The parameter names the draft model the strategy proposes with (``param(...,
    draft_model=True)``): ``sage-llm generate --draft-model`` sets it, ``sage-llm replay``
    replays such a strategy over a draft's recorded predictions."""

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "required": self.required,
            "default": None if self.required else self.default,
            "doc": self.doc,
            "ge": self.ge,
            "le": self.le,
            "choices": list(self.choices) if self.choices is not None else None,
            "draft_model": self.draft_model,
        }


def param(
    default: Any = MISSING,
    *,
    doc: str,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | None = None,
    draft_model: bool = False,
) -> Any:
    """Declare a strategy parameter (a dataclass field with its documentation and bounds).

    ``ge``/``le`` are inclusive bounds for numbers; ``choices`` restricts the allowed values.
    Leave ``default`` out to make the parameter required. ``draft_model=True`` marks the one
    parameter (a ``str``, or ``str | None`` when optional) that names the draft model the
    strategy proposes with, so tools can offer ``--draft-model`` without knowing its name.
    """
    meta = {
        _META_KEY: {"doc": doc, "ge": ge, "le": le, "choices": choices, "draft_model": draft_model}
    }
    return dataclasses.field(default=default, metadata=meta)


def params_of(cls: type) -> list[ParamSpec]:
    """The parameters of a strategy class, in declaration order."""
    if dataclasses.is_dataclass(cls):
        hints = _type_hints(cls)
        specs = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            meta = f.metadata.get(_META_KEY, {})
            default = f.default
            factory: Any = f.default_factory
            if default is MISSING and factory is not MISSING:
                default = factory()
            specs.append(
                ParamSpec(
                    name=f.name,
                    annotation=hints.get(f.name, f.type),
                    default=default,
                    doc=meta.get("doc", ""),
                    ge=meta.get("ge"),
                    le=meta.get("le"),
                    choices=meta.get("choices"),
                    draft_model=bool(meta.get("draft_model", False)),
                )
            )
        return specs
    return _params_from_signature(cls)


def draft_model_param(cls: type) -> ParamSpec | None:
    """The parameter of ``cls`` declared with ``draft_model=True`` (the first, should a class
    declare several; the conformance kit refuses that), or ``None``."""
    return next((spec for spec in params_of(cls) if spec.draft_model), None)


def draft_model_of(strategy: object) -> str | None:
    """The draft model ``strategy`` proposes with: its draft-model parameter's value, or
    ``None`` (no such parameter, or left unset)."""
    spec = draft_model_param(type(strategy))
    value = getattr(strategy, spec.name, None) if spec is not None else None
    return value if isinstance(value, str) else None


def _params_from_signature(cls: type) -> list[ParamSpec]:
    init = getattr(cls, "__init__")  # noqa: B009 - mypy rejects cls.__init__
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return []
    hints = _type_hints(init)
    specs = []
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        specs.append(
            ParamSpec(
                name=name,
                annotation=hints.get(name, Any if p.annotation is p.empty else p.annotation),
                default=MISSING if p.default is p.empty else p.default,
            )
        )
    return specs


def accepts_any_keyword(cls: type) -> bool:
    """True for strategies whose ``__init__`` takes ``**kwargs`` (nothing to validate)."""
    if dataclasses.is_dataclass(cls):
        return False
    try:
        sig = inspect.signature(getattr(cls, "__init__"))  # noqa: B009
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _type_hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return dict(getattr(obj, "__annotations__", {}))


def check_value(strategy: str, spec: ParamSpec, value: Any) -> None:
    """Raise :class:`InvalidParameterError` when ``value`` does not fit ``spec``."""
    if not _matches(value, spec.annotation):
        raise InvalidParameterError(
            strategy,
            f"parameter {spec.name!r} must be {spec.type_name}, got {value!r} "
            f"({type(value).__name__}).",
            spec.name,
        )
    if value is None:
        return
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(repr(c) for c in spec.choices)
        raise InvalidParameterError(
            strategy, f"parameter {spec.name!r} must be one of {allowed}, got {value!r}.", spec.name
        )
    if spec.ge is not None and value < spec.ge:
        raise InvalidParameterError(
            strategy, f"parameter {spec.name!r} must be >= {spec.ge:g}, got {value!r}.", spec.name
        )
    if spec.le is not None and value > spec.le:
        raise InvalidParameterError(
            strategy, f"parameter {spec.name!r} must be <= {spec.le:g}, got {value!r}.", spec.name
        )


def check_names(strategy: str, cls: type, given: Mapping[str, Any]) -> None:
    """Reject unknown and missing parameter names before the constructor sees them."""
    if accepts_any_keyword(cls):
        return
    specs = {s.name: s for s in params_of(cls)}
    unknown = sorted(set(given) - set(specs))
    if unknown:
        import difflib  # only on this error path: import sage.llm stays cheap

        known = ", ".join(specs) or "none"
        close = list(
            dict.fromkeys(
                match
                for name in unknown
                for match in difflib.get_close_matches(name, list(specs), n=1, cutoff=0.6)
            )
        )
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise InvalidParameterError(
            strategy,
            f"unknown parameter(s) {', '.join(unknown)}.{hint} This strategy takes: {known}.",
            unknown[0],
        )
    missing = [n for n, s in specs.items() if s.required and n not in given]
    if missing:
        raise InvalidParameterError(
            strategy,
            f"missing required parameter(s) {', '.join(missing)} "
            f"(e.g. '{strategy}:{missing[0]}=...').",
            missing[0],
        )


def coerce(strategy: str, spec: ParamSpec, text: str) -> Any:
    """Turn the string form of a value (from ``"name:k=v"``) into the declared type."""
    for candidate in _candidate_types(spec.annotation):
        try:
            return _coerce_to(candidate, text)
        except (ValueError, TypeError):
            continue
    raise InvalidParameterError(
        strategy,
        f"parameter {spec.name!r} must be {spec.type_name}, could not read {text!r}.",
        spec.name,
    )


def coerce_all(strategy: str, cls: type, raw: Mapping[str, str]) -> dict[str, Any]:
    """Coerce every string value of ``raw`` with the types ``cls`` declares."""
    specs = {s.name: s for s in params_of(cls)}
    out: dict[str, Any] = {}
    for key, text in raw.items():
        spec = specs.get(key)
        out[key] = coerce(strategy, spec, text) if spec else _guess(text)
    return out


# -- "name:k=v" strings ------------------------------------------------------------------


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy string: ``[distribution:]name[:key=value,...]``."""

    name: str
    distribution: str | None = None
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)


def parse_spec(text: str) -> StrategySpec:
    """Parse ``"ngram"``, ``"ngram:n=5,num_speculative_tokens=4"`` or ``"dist:ngram:n=5"``.

    The optional leading ``distribution:`` picks one of several distributions that register
    the same name. A part containing ``=`` is always the parameter list.
    """
    text = text.strip()
    if not text:
        raise StrategySpecError("empty strategy string; expected e.g. 'ngram' or 'ngram:n=5'.")
    segments = text.split(":")
    # parameters start at the first segment holding "=", so values may contain ":" (paths)
    first_param = next((i for i, seg in enumerate(segments) if "=" in seg), len(segments))
    head, params_text = segments[:first_param], ":".join(segments[first_param:])
    if head and head[-1] == "" and len(head) > 1:  # "ngram:" - an empty parameter list
        head = head[:-1]
    if len(head) == 1:
        dist, name = None, head[0]
    elif len(head) == 2:
        dist, name = head
    else:
        raise StrategySpecError(
            f"could not parse strategy string {text!r}; expected "
            "'[distribution:]name[:key=value,...]', e.g. 'ngram:n=5,num_speculative_tokens=4'."
        )
    if not name or (dist is not None and not dist) or "=" in name:
        raise StrategySpecError(
            f"could not parse strategy string {text!r}; expected "
            "'[distribution:]name[:key=value,...]'."
        )
    return StrategySpec(name=name.strip(), distribution=dist, params=parse_kv(params_text, text))


def parse_kv(params_text: str, context: str = "") -> dict[str, str]:
    """Parse ``"a=1,b=x"`` into ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in params_text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StrategySpecError(
                f"bad parameter {item!r} in {context or params_text!r}; expected key=value."
            )
        key = key.strip()
        if not key.isidentifier():
            raise StrategySpecError(
                f"bad parameter name {key!r} in {context or params_text!r}; parameter names are "
                "Python identifiers such as num_speculative_tokens."
            )
        if key in out:
            raise StrategySpecError(f"parameter {key!r} given twice in {context!r}.")
        out[key] = value.strip()
    return out


def format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_spec(name: str, values: Mapping[str, Any]) -> str:
    """The inverse of :func:`parse_spec` for a strategy's non-default parameter values."""
    if not values:
        return name
    body = ",".join(f"{k}={format_value(v)}" for k, v in values.items())
    return f"{name}:{body}"


# -- type helpers --------------------------------------------------------------------------

_NONE_TEXT = {"none", "null", ""}
_TRUE_TEXT = {"1", "true", "yes", "on"}
_FALSE_TEXT = {"0", "false", "no", "off"}


def _candidate_types(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = list(typing.get_args(annotation))
        # try None first so "none" never becomes the string "none" for str | None
        return sorted(args, key=lambda a: a is not type(None))
    return [annotation]


def _coerce_to(tp: Any, text: str) -> Any:
    lowered = text.strip().lower()
    if tp is type(None):
        if lowered in _NONE_TEXT:
            return None
        raise ValueError(text)
    if tp is bool:
        if lowered in _TRUE_TEXT:
            return True
        if lowered in _FALSE_TEXT:
            return False
        raise ValueError(text)
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str or tp is Any:
        return text
    if typing.get_origin(tp) is Literal:
        for choice in typing.get_args(tp):
            if str(choice) == text:
                return choice
        raise ValueError(text)
    raise TypeError(tp)


def _guess(text: str) -> Any:
    """Values for strategies that declare no types (``**kwargs``): int, float, bool, else str."""
    for tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in _TRUE_TEXT - {"1"}:
        return True
    if lowered in _FALSE_TEXT - {"0"}:
        return False
    if lowered in ("none", "null"):
        return None
    return text


def _matches(value: Any, annotation: Any) -> bool:
    if annotation is Any or annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return True
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        annotation = origin
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if annotation is Any or annotation is inspect.Parameter.empty:
        return "any"
    return getattr(annotation, "__name__", str(annotation))
