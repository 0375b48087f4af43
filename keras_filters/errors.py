"""Errors that a user can fix, and the wording that helps them fix it."""

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """Bad input from the user: the command line reports it in one line and exits with code 2."""


class UnknownSettingError(UsageError, TypeError):
    """A setting that `keras_filters.settings` does not declare.

    A TypeError too, as Python raises for an unexpected keyword argument of a function.
    """


class SettingError(UsageError):
    """A setting's value that cannot be used: `image_size=-5 is out of range: use …`.

    Attributes:
        name: The setting.
        value: The value given.
    """

    def __init__(self, name: str, value, problem: str):
        from keras_filters.settings import show

        self.name = name
        self.value = value
        super().__init__(f"{name}={show(value)} {problem}")


class UnusedSettingWarning(UserWarning):
    """A setting given explicitly that has no effect with the others (the Python API warns
    with it; the commands print "warning: …" on stderr)."""


def closest_first(value: str, choices: Iterable[str], limit: int = 10) -> list[str]:
    """Orders `choices` with the close matches of `value` first, as difflib suggests them.

    Args:
        value: What the user typed.
        choices: The valid choices.
        limit: How many choices to return at most. Defaults to 10.

    Returns:
        Up to `limit` choices: difflib's close matches first, then the rest in their given order.
    """
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=limit, cutoff=0.5)
    rest = [choice for choice in choices if choice not in close]
    return (close + rest)[:limit]


def format_choices(value: str, choices: Iterable[str], limit: int = 10) -> str:
    """Formats the valid choices for an error message, closest to `value` first."""
    choices = list(choices)
    shown = closest_first(value, choices, limit)
    more = f", … ({len(choices) - len(shown)} more)" if len(choices) > len(shown) else ""
    return ", ".join(shown) + more
