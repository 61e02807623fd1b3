"""Collecting config problems so that ``validate`` can report all of them at once."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from fustor_agent.config.lines import LineIndex, line_of
from fustor_core import ConfigError

__all__ = ["ConfigErrors", "Problems", "closest", "join_location", "one_line", "unknown_key"]


class ConfigErrors(ConfigError):
    """Several config problems; ``str()`` gives one line per problem. ``warnings``: what was
    found doubtful on the way (a skipped ``.env`` line may explain an error), one line each."""

    def __init__(self, errors: list[ConfigError], warnings: list[str] | None = None) -> None:
        self.errors = errors
        self.warnings = warnings or []
        super().__init__("\n".join(str(e) for e in errors))


def one_line(text: str) -> str:
    """``text`` with control and invisible characters escaped (``\\n``, ``\\x1b``, ``\\u202e``).

    YAML keys and values may hold newlines or terminal escapes; a message must stay one line
    and show what is really there.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def join_location(prefix: str, loc: Iterable[int | str]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was probably meant to be (a typo), or ``None``."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key(key: str, valid: Iterable[str]) -> str:
    """``unknown key`` with the closest valid key, or the valid keys when none is close."""
    valid = list(valid)
    match = closest(key, valid)
    if match is not None:
        return f"unknown key; did you mean {match!r}?"
    return f"unknown key (expected one of: {', '.join(valid)})" if valid else "unknown key"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _keys_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (list indexes skipped); ``[]`` if unknown."""
    current = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        field = fields.get(str(part))
        nested = _models_in(field.annotation) if field is not None else []
        current = nested[0] if nested else None
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# Advice for pydantic's error types, in the user's terms; {name} from the error's context.
_ADVICE = {
    "missing": "missing required key",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be one of: {expected}",
    "enum": "must be one of: {expected}",
    "string_pattern_mismatch": "has characters that are not allowed here",
    "path_type": "must be a path",
}


def _message(error: Any, model: type[BaseModel] | None) -> str:
    # Never the offending input: it may be a credential.
    kind = str(error.get("type"))
    loc = tuple(error.get("loc") or ())
    if kind == "extra_forbidden":
        return unknown_key(str(loc[-1]), _keys_at(model, loc[:-1])) if loc else "unknown key"
    if kind in ("value_error", "assertion_error"):
        # pydantic prefixes a validator's own message with "Value error, ": noise to a user.
        return str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    advice = _ADVICE.get(kind)
    if kind == "string_too_short" and (error.get("ctx") or {}).get("min_length", 1) > 1:
        advice = "must be at least {min_length} characters long"
    if advice is None:
        return str(error.get("msg", "invalid value"))
    context = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    try:
        return advice.format(**context)
    except (KeyError, IndexError):
        return str(error.get("msg", "invalid value"))


class Problems:
    """An accumulator of :class:`ConfigError` for one configuration."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []
        self.lines: dict[str, LineIndex] = {}
        """File label → the line of each location in it (filled by ``read_yaml``)."""
        self._order: list[tuple[str, int]] = []
        self._explained: set[str] = set()
        """Locations whose value an earlier error already explains (an unset variable
        left it empty): the model's complaint about that empty value would repeat it."""

    def _where(self, file: str, location: str) -> tuple[str, int]:
        if not location:
            return file, 0
        line = line_of(self.lines.get(file, {}), location)
        at = f"line {line}: " if line is not None else ""
        return f"{file}: {at}{one_line(location)}", line or 0

    def add(self, file: str, location: str, message: str) -> None:
        """Record a problem at ``location`` (``pipes[0].id``) of ``file``; the message
        names the line too when the file was read by ``read_yaml``."""
        where, line = self._where(file, location)
        if where in self._explained:
            return  # an earlier error there explains this one (an unset variable)
        self._record(file, where, line, message)

    def _record(self, file: str, where: str, line: int, message: str) -> None:
        self.errors.append(ConfigError(one_line(message), where))
        self._order.append((file, line))

    def add_validation(
        self,
        file: str,
        prefix: str,
        exc: ValidationError,
        rename: Callable[[str], str] = lambda loc: loc,
        model: type[BaseModel] | None = None,
    ) -> None:
        """One problem per error of ``exc``, raised by ``model`` (which tells the keys an
        unknown key may have been meant as)."""
        for error in exc.errors(include_input=False, include_url=False):
            self.add(file, rename(join_location(prefix, error["loc"])), _message(error, model))

    def add_explaining(self, file: str, location: str, message: str) -> None:
        """:meth:`add`, for a problem that also explains any later one at the same place
        (which is then not reported); two such problems there are both reported."""
        where, line = self._where(file, location)
        self._record(file, where, line, message)
        self._explained.add(where)

    def warn(self, file: str, location: str, message: str) -> None:
        self.warnings.append(f"{self._where(file, location)[0]}: {one_line(message)}")

    def raise_if_any(self) -> None:
        """Raise the problems, in the order of the files and lines they are at."""
        order = {id(e): key for e, key in zip(self.errors, self._order, strict=True)}
        self.errors.sort(key=lambda e: order[id(e)])
        if len(self.errors) == 1 and not self.warnings:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors, self.warnings)
