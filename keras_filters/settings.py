"""The settings' names and defaults come from configs/base.py, the one place they are declared."""

from configs import base


def default_settings() -> dict:
    """Every setting with its default, as configs/base.py declares it."""
    return base.get_config().to_dict()


def resolve_settings(overrides: dict) -> dict:
    """Merges `overrides` over the defaults.

    Raises:
        TypeError: For a key that configs/base.py does not declare.
    """
    settings = default_settings()
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise TypeError(
            f"unknown setting(s) {', '.join(unknown)}; the settings are: {', '.join(settings)}"
        )
    settings.update(overrides)
    return settings
