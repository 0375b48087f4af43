"""The settings' names and defaults come from configs/base.py, the one place they are declared."""

from configs import base
from keras_filters import errors


def default_settings() -> dict:
    """Every setting with its default, as configs/base.py declares it."""
    return base.get_config().to_dict()


def resolve_settings(overrides: dict) -> dict:
    """Merges `overrides` over the defaults.

    Raises:
        UnknownSettingError: For a key that configs/base.py does not declare (a TypeError and a
            UsageError).
    """
    settings = default_settings()
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise errors.UnknownSettingError(
            f"unknown setting {unknown[0]!r}; configs/base.py declares: "
            f"{errors.format_choices(unknown[0], settings, limit=12)}"
        )
    settings.update(overrides)
    return settings
