"""The package keeps its shape: no import cycles, the library never imports the recipes, and only
the backends import TensorFlow or JAX."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_filters")
# Modules that may import a backend framework: the backends themselves, and the one module
# that knows about distribution (tf.distribute, jax.sharding).
BACKEND_MODULES = (
    "keras_filters.backends.tensorflow",
    "keras_filters.backends.jax",
    "keras_filters.distribution",
)


def module_name(path: str) -> str:
    relative = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")]
    parts = relative.split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    """{module name: its parsed source} for every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as file:
                    found[module_name(path)] = ast.parse(file.read(), path)
    return found


def imported(tree: ast.AST, package: str) -> set:
    """Every module an `import` or `from … import` names, anywhere in the module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = modules()


def internal_imports(name: str) -> set:
    """The package's own modules that module `name` imports at its top level."""
    found = set()
    for node in MODULES[name].body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in imported(node, name):
                if target in MODULES and target != name:
                    found.add(target)
    return found


def test_there_are_no_import_cycles():
    graph = {name: internal_imports(name) for name in MODULES}
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = path[path.index(name) :] + [name]
            pytest.fail("import cycle: " + " → ".join(cycle))
        state[name] = "open"
        for target in sorted(graph[name]):
            visit(target, path + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


def test_no_module_imports_the_recipes():
    for name, tree in MODULES.items():
        recipes = {target for target in imported(tree, name) if target.split(".")[0] == "configs"}
        assert not recipes, f"{name} imports {sorted(recipes)}"


@pytest.mark.parametrize("framework", ["tensorflow", "jax"])
def test_only_the_backends_import_tensorflow_or_jax(framework):
    offenders = [
        name
        for name, tree in MODULES.items()
        if name not in BACKEND_MODULES
        and any(target.split(".")[0] == framework for target in imported(tree, name))
    ]
    assert offenders == []


def test_the_checker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    import tensorflow as tf\n")
    assert "tensorflow" in imported(tree, "x")
