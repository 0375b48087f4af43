"""Renders the published figures, one subfolder each, and an index.html that shows them all.

Each figure is a config file under configs/ (see FIGURES); the same overrides (random
weights, fewer steps, …) apply to every figure, so that the whole set can run on a small
machine, and the real settings reproduce the published pictures.
"""

import dataclasses
import html
import json
import os
import shlex
import sys
from collections.abc import Sequence
from urllib.parse import quote

from keras_filters import errors, recipes
from keras_filters import settings as settings_lib
from keras_filters.job import artifacts, resume
from keras_filters.job import run as job

CONFIGS_FOLDER = recipes.CONFIGS_FOLDER
INDEX_FILE = "index.html"
PROGRAM = "keras-filters"  # The command that renders one figure, as the index shows it.
SCRIPT = "reproduce"  # This script, as its progress lines name it.

BLOG = 'Keras blog, "How convolutional neural networks see the world" (F. Chollet, 2016)'
KERAS_EXAMPLE = "Keras example conv_filter_visualization.py"
KERASIO = 'keras.io, "Visualizing what convnets learn" (F. Chollet, 2020)'
DLWP = "Deep Learning with Python (F. Chollet)"


@dataclasses.dataclass(frozen=True)
class Figure:
    """One published figure and the config that reproduces it.

    Attributes:
        name: The figure's id: its subfolder in the output folder and its anchor in index.html.
        config: The config file, under configs/ unless absolute, optionally followed by
            ":argument" for its `get_config` (as `--config=configs/dlwp1.py:block2_conv1`).
        source: Where the figure was published.
    """

    name: str
    config: str
    source: str


FIGURES = (
    Figure("blog_block5", "blog_block5.py", f"{BLOG}; {KERAS_EXAMPLE} (2016–2018)"),
    Figure("blog_header", "blog_header.py", BLOG),
    Figure("blog_overview", "blog_overview.py", BLOG),
    Figure("blog_single", "blog_single.py", BLOG),
    Figure("blog_classes", "blog_classes.py", BLOG),
    Figure("kerasio", "kerasio.py", KERASIO),
    *(
        Figure(f"dlwp1_{layer}", f"dlwp1.py:{layer}", f"{DLWP}, 1st edition, section 5.4.2")
        for layer in ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
    ),
    Figure("dlwp1_single", "dlwp1_single.py", f"{DLWP}, 1st edition, section 5.4.2"),
    Figure("dlwp2", "dlwp2.py", f"{DLWP}, 2nd edition, chapter 9"),
    Figure("dlwp2_single", "dlwp2_single.py", f"{DLWP}, 2nd edition, chapter 9"),
    Figure("dlwp3", "dlwp3.py", f"{DLWP}, 3rd edition, chapter 10"),
    # Last: by far the longest run (all 512 filters, 135 steps each, up to 343 px).
    Figure("keras_v3_upscale", "keras_v3_upscale.py", f"{KERAS_EXAMPLE}, 2019 rewrite"),
)


# Names of the README's table that stand for several figures: dlwp1 is its four layers.
FIGURE_GROUPS = ("dlwp1",)


@dataclasses.dataclass
class RenderedFigure:
    """A figure after its run: what it is, the settings it ran with, and its run record."""

    figure: Figure
    title: str
    settings: settings_lib.Settings
    record: dict
    overrides: dict = dataclasses.field(default_factory=dict)


def select_figures(names: Sequence[str], figures: Sequence[Figure] = FIGURES) -> list[Figure]:
    """The figures named in `names`, in that order; every figure when `names` is empty.

    Raises:
        UsageError: For a name that is not a figure; the message lists the figures.
    """
    by_name = {figure.name: [figure] for figure in figures}
    for group in FIGURE_GROUPS:
        by_name[group] = [figure for figure in figures if figure.name.startswith(group + "_block")]
    unknown = [name for name in names if not by_name.get(name)]
    if unknown:
        raise errors.UsageError(
            f"unknown figure {unknown[0]!r}; choose from: "
            + errors.format_choices(unknown[0], by_name, limit=len(by_name))
        )
    chosen = [figure for name in names for figure in by_name[name]]
    return list(dict.fromkeys(chosen)) if names else list(figures)


def _config_path(figure: Figure) -> tuple[str, str]:
    """(path of the config file, argument for its get_config or "")."""
    path, _, argument = figure.config.partition(":")
    return (path if os.path.isabs(path) else os.path.join(CONFIGS_FOLDER, path)), argument


def load_figure_config(figure: Figure) -> tuple[str, dict]:
    """Loads a figure's config file.

    Returns:
        (title, settings): the first line of the config's docstring, without its "Figure:"
        label, and the config as a plain dict.

    Raises:
        UsageError: If the config file does not exist.
    """
    path, argument = _config_path(figure)
    if not os.path.isfile(path):
        raise errors.UsageError(f"figure {figure.name!r}: config file {path!r} does not exist")
    config, docstring = recipes.load(path, argument)
    summary = docstring.strip().split("\n", 1)[0]
    title = summary.split(":", 1)[1].strip() if summary.startswith("Figure") else summary
    return title, config.to_dict()


def figure_settings(figure: Figure, overrides: dict) -> tuple[str, settings_lib.Settings]:
    """A figure's title and validated settings, with `overrides` applied over its config.

    Raises:
        UsageError: For a missing config file or a bad setting; the message names the figure.
    """
    title, settings = load_figure_config(figure)
    try:
        return title, settings_lib.Settings.create(settings, **overrides)
    except errors.UsageError as error:
        raise errors.UsageError(f"figure {figure.name!r}: {error}") from None


def unused_overrides(figures: Sequence[Figure], overrides: dict) -> list[str]:
    """The overrides that have no effect on some of `figures` (`settings.unused_settings`),
    one line for each, naming the figures it holds for.

    Raises:
        UsageError: For a missing config file or a bad setting; the message names the figure.
    """
    found = {}
    for figure in figures:
        _, settings = figure_settings(figure, overrides)
        for line in settings_lib.unused_settings(settings.to_dict(), overrides):
            found.setdefault(line, []).append(repr(figure.name))
    return [
        f"figure{'s' if len(names) > 1 else ''} {', '.join(names)}: {line}"
        for line, names in found.items()
    ]


def reproduce(
    outdir: str, figures: Sequence[Figure], overrides: dict, log=None
) -> list[RenderedFigure]:
    """Runs every figure into `outdir/<figure name>/` and writes `outdir/index.html`.

    Every config is loaded and checked, and every figure's folder (writable, and holding no
    unfinished run of other settings), before the first run, so that a bad name, setting or
    folder fails before any work is done; what needs the model (a layer, a filter index, an
    input size) is checked as each figure's run starts. A figure whose folder
    already holds its finished run, with the same settings, is kept, not run again: running
    the same command after an interruption goes on where it stopped (the interrupted figure
    itself resumes from its saved chunks).

    Args:
        outdir: The output folder.
        figures: The figures to render, in order.
        overrides: Settings applied to every figure over its config (for example
            {"weights": "none", "num_steps": 1}).
        log: Stream for progress and warnings. Defaults to sys.stderr.

    Returns:
        The rendered figures, in order.

    Raises:
        UsageError: For a bad figure or setting; its message names the figure.
    """
    log = log if log is not None else sys.stderr
    planned = [(figure, *figure_settings(figure, overrides)) for figure in figures]
    for figure, _, settings in planned:  # A bad folder fails before the first figure.
        folder = os.path.join(outdir, figure.name)
        artifacts.check_outdir(folder)
        resume.refuse_other_unfinished_run(folder, settings.to_dict(), f"figure {figure.name!r}")
    rendered = []
    for number, (figure, title, settings) in enumerate(planned, start=1):
        folder = os.path.join(outdir, figure.name)
        record = job.finished_record(folder, settings)
        if record is not None:
            print(
                f"{SCRIPT}: figure {number}/{len(planned)}: {figure.name} is already done in "
                f"{folder}; kept",
                file=log,
            )
            rendered.append(RenderedFigure(figure, title, settings, record, dict(overrides)))
            continue
        print(f"{SCRIPT}: figure {number}/{len(planned)}: {figure.name}", file=log)
        try:
            record = job.run(folder, settings, log=log)
        except errors.UsageError as error:
            raise errors.UsageError(f"figure {figure.name!r}: {error}") from None
        rendered.append(RenderedFigure(figure, title, settings, record, dict(overrides)))
    known = list(dict.fromkeys([*FIGURES, *figures]))
    page = index_html(rendered_figures(outdir, known), outdir)
    artifacts.write_text(os.path.join(outdir, INDEX_FILE), page)
    return rendered


def rendered_figures(outdir: str, figures: Sequence[Figure] = FIGURES) -> list[RenderedFigure]:
    """Every one of `figures` whose finished run is in `outdir` (from this call or an earlier
    one), in that order, with the settings it ran with and where they differ from its recipe.
    An interrupted figure's run is left out: its mosaic holds only the filters it finished."""
    found = []
    for figure in figures:
        path = os.path.join(outdir, figure.name, job.RUN_FILE)
        try:
            with open(path, encoding="utf-8") as file:
                record = json.load(file)
            title, recipe = load_figure_config(figure)
            settings = settings_lib.Settings.create(record["settings"])
            if record["complete"] is not True:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue  # Not there, unreadable, or written by another version: not shown.
        ran_with = settings.to_dict()
        overrides = {
            key: value
            for key, value in ran_with.items()
            if settings_lib.Settings.create(recipe).to_dict()[key] != value
        }
        found.append(RenderedFigure(figure, title, settings, record, overrides))
    return found


def command_line(figure: Figure, outdir: str, overrides: dict) -> str:
    """The `keras-filters` command that renders `figure` alone into its subfolder."""
    config = figure.config
    if not os.path.isabs(config.partition(":")[0]):
        config = f"configs/{config}"
    words = [PROGRAM, f"--config={config}"]
    words += [f"--config.{key}={_format_value(value)}" for key, value in overrides.items()]
    words.append(f"--outdir={os.path.join(outdir, figure.name)}")
    return " ".join(shlex.quote(word) for word in words)


def _format_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _escape(value) -> str:
    """Any value as HTML text: model, layer and setting names come from files we do not own."""
    return html.escape(_format_value(value), quote=True)


PAGE_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 80em; }
section { margin-bottom: 3em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }
code { font-size: 0.95em; }
"""


def index_html(rendered: Sequence[RenderedFigure], outdir: str) -> str:
    """The index page: each figure with its source, model, layer, settings and time taken.

    Every value that comes from a config, a model or the command line is escaped.
    """
    defaults = settings_lib.default_settings()
    seconds = round(sum(float(item.record.get("seconds", 0.0)) for item in rendered), 1)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>keras-filters: the published figures</title>",
        f"<style>{PAGE_STYLE}</style></head><body>",
        "<h1>keras-filters: the published figures</h1>",
        f"<p>{len(rendered)} figures in {_escape(seconds)} s. Figures made with other weights "
        "or fewer steps than their recipe's show the pipeline, not the published pictures: "
        "each says which settings it ran with over its recipe.",
    ]
    parts.append("</p><ul>")
    for item in rendered:
        anchor = _escape(item.figure.name)
        parts.append(f'<li><a href="#{anchor}">{anchor}</a>: {_escape(item.title)}</li>')
    parts.append("</ul>")
    for item in rendered:
        parts.append(_figure_section(item, item.overrides, outdir, defaults))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _figure_section(item: RenderedFigure, overrides: dict, outdir: str, defaults: dict) -> str:
    record, settings, figure = item.record, item.settings, item.figure
    mosaic = record["mosaic"]
    if mosaic.get("file"):
        source = quote(f"{figure.name}/{mosaic['file']}")
        picture = (
            f'<p><img src="{_escape(source)}" alt="{_escape(figure.name)}" '
            f'width="{int(mosaic["width"])}"></p>'
        )
        size = f"{int(mosaic['width'])}×{int(mosaic['height'])} px"
    else:
        picture = "<p>No mosaic: every filter was dead or failed.</p>"
        size = "none"
    if "panels" in record:
        grid = ", ".join(
            f"{_escape(panel['layer'])}: {len(panel['mosaic']['filters'])} filters"
            for panel in record["panels"]
        )
    else:
        grid = f"{int(mosaic['rows'])}×{int(mosaic['cols'])}: filters " + ", ".join(
            _escape(index) for index in mosaic["filters"]
        )
    rows = [
        ("Source", _escape(figure.source)),
        ("Config", f"<code>{_escape(figure.config)}</code>"),
        ("Command", f"<code>{_escape(command_line(figure, outdir, overrides))}</code>"),
        ("Model", _escape(record["model"])),
        ("Layer", _escape(record["layer"])),
        ("Mosaic", f"{_escape(size)}; {grid}"),
        ("Time taken", f"{_escape(record['seconds'])} s"),
        (
            "Run with, over its recipe",
            ", ".join(f"<code>{_escape(k)}={_escape(v)}</code>" for k, v in overrides.items())
            or "the recipe's own settings",
        ),
    ]
    settings = settings.to_dict()
    changed = [(key, value) for key, value in settings.items() if defaults.get(key) != value]
    return "\n".join(
        [
            f'<section id="{_escape(figure.name)}">',
            f"<h2>{_escape(figure.name)}</h2>",
            f"<p>{_escape(item.title)}</p>",
            _table(rows),
            picture,
            "<p>Settings that differ from configs/base.py:</p>",
            _table([(_escape(key), _escape(value)) for key, value in changed]),
            "<details><summary>All settings</summary>",
            _table([(_escape(key), _escape(value)) for key, value in settings.items()]),
            "</details>",
            "</section>",
        ]
    )


def _table(rows) -> str:
    """An HTML table of (header, cell) pairs whose text is already escaped."""
    body = "".join(f"<tr><th>{header}</th><td>{cell}</td></tr>" for header, cell in rows)
    return f"<table>{body}</table>"
