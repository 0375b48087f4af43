"""Finds and loads the recipes (configs/*.py): runnable configs built from the settings.

The recipes live in the repository's `configs/` folder, beside the package; they import the
library, never the reverse. A recipe may import its siblings (`from configs import dlwp2`), so
the folder that holds a recipe package is put on the import path before a recipe loads.
"""

import importlib.util
import os
import sys

from keras_filters import errors

CONFIGS_FOLDER = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs"
)
BASE_RECIPE = os.path.join(CONFIGS_FOLDER, "base.py")


def available() -> list[str]:
    """The recipes' names (configs/NAME.py), sorted."""
    if not os.path.isdir(CONFIGS_FOLDER):
        return []
    return sorted(
        name[: -len(".py")]
        for name in os.listdir(CONFIGS_FOLDER)
        if name.endswith(".py") and not name.startswith("_")
    )


def resolve(spec: str) -> str:
    """The recipe file that `spec` names: a path, or a recipe's bare name ("quickstart").

    A bare name (no folder, no .py) is looked up in the project's configs/ folder, so that
    `--config=quickstart` works from any working directory; ":argument" is kept.

    Raises:
        UsageError: For a bare name that is no recipe; the message lists the recipes.
    """
    path, colon, argument = spec.partition(":")
    if os.path.exists(path) or os.sep in path or "/" in path or path.endswith(".py"):
        return spec
    candidate = os.path.join(CONFIGS_FOLDER, path + ".py")
    if not os.path.isfile(candidate):
        raise errors.UsageError(
            f"no recipe named {path!r}; the recipes are: "
            f"{errors.format_choices(path, available(), limit=30)}"
        )
    return candidate + colon + argument


def make_importable(path: str) -> None:
    """Lets the recipe at `path` import its siblings, when its folder is a package."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(folder, "__init__.py")):
        parent = os.path.dirname(folder)
        if parent not in sys.path:
            sys.path.insert(0, parent)


def load(path: str, argument: str = ""):
    """Runs the recipe file at `path` and returns `get_config(argument)` (or `get_config()`).

    Returns:
        (config, docstring): the recipe's `ml_collections.ConfigDict` and its module docstring.
    """
    make_importable(path)
    name = "recipe_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(argument) if argument else module.get_config()
    return config, module.__doc__ or ""
