"""Collecting config problems so that ``validate`` can report all of them at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError

from fustor_core import ConfigError

__all__ = ["ConfigErrors", "Problems", "join_location", "one_line"]


class ConfigErrors(ConfigError):
    """Several config problems; ``str()`` gives one line per problem."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
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


def _message(error: dict) -> str:  # type: ignore[type-arg]
    # Never the offending input: it may be a credential.
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    message = str(error.get("msg", "invalid value"))
    if kind == "value_error":
        # pydantic prefixes a validator's own message with "Value error, ": noise to a user.
        message = message.removeprefix("Value error, ")
    return message


class Problems:
    """An accumulator of :class:`ConfigError` for one configuration."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []

    def add(self, file: str, location: str, message: str) -> None:
        where = f"{file}: {one_line(location)}" if location else file
        self.errors.append(ConfigError(one_line(message), where))

    def add_validation(
        self,
        file: str,
        prefix: str,
        exc: ValidationError,
        rename: Callable[[str], str] = lambda loc: loc,
    ) -> None:
        for error in exc.errors(include_input=False, include_url=False):
            self.add(file, rename(join_location(prefix, error["loc"])), _message(error))

    def warn(self, file: str, location: str, message: str) -> None:
        where = f"{file}: {one_line(location)}" if location else file
        self.warnings.append(f"{where}: {one_line(message)}")

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)
