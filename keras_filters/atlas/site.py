"""Writes an atlas as a static site: an index, a page per layer, a page per filter.

The site needs no network and no server: pages open from file://, images are files beside the
pages (never data URLs, so that a 10,000-filter atlas stays light to browse), and the one inline
script (tile sorting, arrow-key navigation) is allowed by hash in each page's
Content-Security-Policy, so that nothing else can run even if a string slipped through.

Every string that comes from the model or the user's files (model, layer and class names, shapes,
file names) is HTML-escaped, and file paths are also URL-quoted. Folder names derived from layer
names are reduced to [A-Za-z0-9_-] and prefixed with the layer's position (see layer_folder).
Pages are written atomically, filter pages first and the index last, and hold no timestamps:
the same atlas gives the same bytes.

Layout, relative to the site folder:

    index.html
    <layer folder>/index.html                      one per layer
    <layer folder>/filter-<index>.html             one per filter

Image files can live anywhere under the site folder; the atlas data gives their paths relative
to it (the atlas driver puts them in the layer's folder).
"""

import base64
import dataclasses
import hashlib
import html
import html.parser
import math
import os
import posixpath
import re
import urllib.parse
from collections.abc import Sequence

from keras_filters.job import artifacts

INDEX_PAGE = "index.html"
LAYER_PAGE = "index.html"
MAX_FOLDER_NAME = 60


@dataclasses.dataclass(frozen=True)
class ExampleCrop:
    """A dataset example shown on a filter's page.

    Attributes:
        image: The crop's image file, relative to the site folder.
        activation: The filter's activation at the crop's centre position.
        source: Where the crop comes from (the user's image file name), shown as text.
    """

    image: str
    activation: float
    source: str = ""


@dataclasses.dataclass(frozen=True)
class FilterEntry:
    """One filter's results.

    Attributes:
        index: The filter (channel) index in its layer.
        image: The optimized image's file, relative to the site folder; None for none.
        objective: The final objective.
        dead: Whether the objective never rose above the dead threshold.
        failed: Whether the loss became NaN or infinite.
        robustness: Its image's robustness (`keras_filters.quality.robustness`); None if not
            measured.
        high_frequency: The share of its image's spectral power above a quarter cycle per
            pixel (`keras_filters.quality.high_frequency_fraction`); None if not measured.
        loss_curve: The loss at every step of the ascent.
        examples: The dataset examples, most exciting first.
        restarted_from: The filter whose picture this one's rival restart started from (its
            objective is then the restart's, past the end of `loss_curve`); None for none.
    """

    index: int
    image: str | None
    objective: float
    dead: bool = False
    failed: bool = False
    robustness: float | None = None
    high_frequency: float | None = None
    loss_curve: tuple[float, ...] = ()
    examples: tuple[ExampleCrop, ...] = ()
    restarted_from: int | None = None


@dataclasses.dataclass(frozen=True)
class LayerEntry:
    """One layer's results.

    Attributes:
        name: The layer's path ("block5_conv1", "vgg16/block5_conv1").
        type: The layer's class name.
        output_shape: The output shape, batch axis included (None for unknown sizes).
        num_filters: The layer's filter (channel) count.
        num_dead: How many of its filters are dead.
        seconds: The time its filters took.
        mosaic: The mosaic's image file, relative to the site folder; None for none.
        filters: The filters with pages, in any order (pages follow filter index order).
        num_failed: How many of its filters failed.
    """

    name: str
    type: str
    output_shape: tuple
    num_filters: int
    num_dead: int
    seconds: float
    mosaic: str | None
    filters: tuple[FilterEntry, ...]
    num_failed: int = 0


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """The model the atlas shows.

    Attributes:
        name: The model's name.
        details: (label, value) rows for the index page: input size, parameters, recipe, ...
    """

    name: str
    details: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Atlas:
    """Everything the site shows."""

    model: ModelSummary
    layers: tuple[LayerEntry, ...]


def layer_folder(position: int, name: str) -> str:
    """The folder of a layer's pages: its position and a file-safe form of its name.

    Only ASCII letters, digits, "_" and "-" are kept, so that the name is safe in a URL, on
    every file system and in a shell; the position keeps two layers whose names reduce alike
    apart ("a/b" and "a_b").

    Args:
        position: The layer's place in the atlas, from 0.
        name: The layer's name or path.

    Returns:
        A name like "003-block2_conv1" ("003-layer" when nothing of the name is kept).
    """
    if not isinstance(position, int) or position < 0:
        raise ValueError(f"position={position!r}: use an integer >= 0")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_-")[:MAX_FOLDER_NAME]
    return f"{position:03d}-{safe or 'layer'}"


def filter_page(index: int) -> str:
    """The file name of a filter's page in its layer's folder."""
    return f"filter-{int(index):04d}.html"


def atlas_from_dict(data: dict) -> Atlas:
    """Reads an Atlas from plain data (as loaded from JSON).

    Expected: {"model": {"name", "details": {label: value} or [[label, value], ...]},
    "layers": [{"name", "type", "output_shape", "num_filters", "num_dead", "num_failed"
    (optional), "seconds", "mosaic", "filters": [{"index", "image", "objective", "dead",
    "failed", "robustness", "high_frequency", "loss_curve", "restarted_from", "examples":
    [{"image", "activation", "source"}]}]}]}. Missing optional fields take their defaults.

    Raises:
        ValueError: For a missing field or a value of the wrong type; the message names it.
    """
    model = _field(data, "model", dict, "atlas")
    details = model.get("details", {})
    if isinstance(details, dict):
        details = details.items()
    layers = []
    for position, layer in enumerate(_field(data, "layers", list, "atlas")):
        where = f"layers[{position}]"
        filters = []
        for number, entry in enumerate(_field(layer, "filters", list, where)):
            at = f"{where}.filters[{number}]"
            examples = tuple(
                ExampleCrop(
                    image=_field(example, "image", str, f"{at}.examples[{rank}]"),
                    activation=_number(example.get("activation"), f"{at}.examples[{rank}]"),
                    source=str(example.get("source", "")),
                )
                for rank, example in enumerate(entry.get("examples") or ())
            )
            filters.append(
                FilterEntry(
                    index=_field(entry, "index", int, at),
                    image=entry.get("image"),
                    objective=_number(entry.get("objective"), f"{at}.objective"),
                    dead=bool(entry.get("dead", False)),
                    failed=bool(entry.get("failed", False)),
                    robustness=_optional_number(entry.get("robustness"), f"{at}.robustness"),
                    high_frequency=_optional_number(
                        entry.get("high_frequency"), f"{at}.high_frequency"
                    ),
                    loss_curve=tuple(
                        _number(value, f"{at}.loss_curve") for value in entry.get("loss_curve", ())
                    ),
                    examples=examples,
                    restarted_from=_optional_index(entry.get("restarted_from"), at),
                )
            )
        layers.append(
            LayerEntry(
                name=str(_field(layer, "name", str, where)),
                type=str(layer.get("type", "")),
                output_shape=tuple(layer.get("output_shape", ())),
                num_filters=_field(layer, "num_filters", int, where),
                num_dead=int(layer.get("num_dead", sum(item.dead for item in filters))),
                seconds=_number(layer.get("seconds", 0.0), f"{where}.seconds"),
                mosaic=layer.get("mosaic"),
                filters=tuple(filters),
                num_failed=int(layer.get("num_failed", sum(item.failed for item in filters))),
            )
        )
    return Atlas(
        ModelSummary(
            name=str(_field(model, "name", str, "model")),
            details=tuple((str(label), str(value)) for label, value in details),
        ),
        tuple(layers),
    )


def _field(data, key: str, kind: type, where: str):
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"{where}: missing field {key!r}")
    value = data[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{where}.{key}={value!r} is not a {kind.__name__}")
    return value


def _number(value, where: str) -> float:
    if value is None:  # JSON has no NaN: writers store it as null.
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}={value!r} is not a number")
    return float(value)


def _optional_number(value, where: str) -> float | None:
    return None if value is None else _number(value, where)


# ---------------------------------------------------------------------------------------------
# Pages.

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
a { color: #0645ad; }
nav { margin: 0.5em 0 1em; }
nav a, nav span { margin-right: 1.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
img { image-rendering: pixelated; border: 1px solid #ccc; background: #eee; }
.layer-head { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
img.mosaic { max-width: 100%; width: 18em; }
img.thumbnail { height: 4em; display: block; }
td { vertical-align: middle; }
.filter { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
.filter h2 { margin: 0.5em 0 0.2em; font-size: 1.1em; }
.large { width: 24em; height: 24em; object-fit: contain; }
#tiles { display: flex; flex-wrap: wrap; gap: 0.6em; padding: 0; list-style: none; }
#tiles li { width: 8em; font-size: 0.8em; }
#tiles img { width: 8em; height: 8em; object-fit: contain; display: block; }
#tiles .dead, #tiles .failed { color: #a00; }
.examples { display: flex; flex-wrap: wrap; gap: 0.8em; }
.examples figure { margin: 0; width: 8em; font-size: 0.8em; overflow-wrap: anywhere; }
.examples img { width: 8em; height: 8em; object-fit: contain; }
button[aria-pressed="true"] { font-weight: bold; }
svg text { font-size: 11px; fill: #444; }
.hint { color: #666; font-size: 0.85em; }
"""

# Arrow keys follow the links marked data-key; the layer page's buttons sort its tiles.
SCRIPT = """
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var target = event.target;
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    var link = document.querySelector('a[data-key="' + event.key + '"]');
    if (!link) return;
    event.preventDefault();
    window.location.href = link.href;
  });
  var tiles = document.getElementById("tiles");
  if (!tiles) return;
  var buttons = document.querySelectorAll("button[data-sort]");
  function objective(item) {
    var value = parseFloat(item.getAttribute("data-objective"));
    return isNaN(value) ? -Infinity : value;
  }
  function sortTiles(key) {
    var items = Array.prototype.slice.call(tiles.children);
    items.sort(function (a, b) {
      if (key === "objective" && objective(a) !== objective(b)) {
        return objective(a) < objective(b) ? 1 : -1;
      }
      return Number(a.getAttribute("data-index")) - Number(b.getAttribute("data-index"));
    });
    items.forEach(function (item) { tiles.appendChild(item); });
    Array.prototype.forEach.call(buttons, function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-sort") === key));
    });
  }
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var key = button.getAttribute("data-sort");
      sortTiles(key);
      window.location.replace("#by-" + key);
    });
  });
  if (window.location.hash === "#by-objective") sortTiles("objective");
})();
"""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Nothing loads from the network; only our own style and script run; images come from the
# site's own files ('self' for http(s), file: when opened from disk).
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; img-src 'self' file:; style-src {_hash(STYLE)}; "
    f"script-src {_hash(SCRIPT)}; base-uri 'none'; form-action 'none'"
)


def _text(value) -> str:
    """Any value as HTML text or a double-quoted attribute value."""
    return html.escape(str(value), quote=True)


def _format_number(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}"


def _format_shape(shape) -> str:
    return "(" + ", ".join("None" if size is None else str(size) for size in shape) + ")"


def _url(path: str, page_folder: str) -> str:
    """The escaped, URL-quoted link from a page in `page_folder` to `path` (both site-relative)."""
    relative = posixpath.relpath(path, page_folder or ".")
    return _text(urllib.parse.quote(relative))


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_text(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head><body>",
            *body,
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )


def _optional_index(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.restarted_from must be a filter index or null, got {value!r}")
    return value


def _status(entry: FilterEntry) -> str:
    return "failed" if entry.failed else "dead" if entry.dead else "alive"


@dataclasses.dataclass(frozen=True)
class _Place:
    """A filter with its layer's position: one step of the walk through the whole atlas."""

    layer_position: int
    entry: FilterEntry


def index_html(atlas: Atlas, folders: Sequence[str]) -> str:
    """The index page: the model and a table of its layers."""
    model = atlas.model
    total_filters = sum(layer.num_filters for layer in atlas.layers)
    total_dead = sum(layer.num_dead for layer in atlas.layers)
    total_failed = sum(layer.num_failed for layer in atlas.layers)
    seconds = sum(layer.seconds for layer in atlas.layers)
    body = [f"<h1>Atlas of {_text(model.name)}</h1>"]
    if model.details:
        body.append("<table>")
        body += [
            f"<tr><th>{_text(label)}</th><td>{_text(value)}</td></tr>"
            for label, value in model.details
        ]
        body.append("</table>")
    body.append(
        f"<p>{len(atlas.layers)} layers, {total_filters} filters ({total_dead} dead, "
        f"{total_failed} failed), {_text(_format_number(seconds))} s.</p>"
    )
    body.append(
        '<table id="layers"><tr><th class="number">#</th><th>Mosaic</th><th>Layer</th><th>Type</th>'
        '<th>Output shape</th><th class="number">Filters</th><th class="number">Dead</th>'
        '<th class="number">Failed</th><th class="number">Time (s)</th></tr>'
    )
    for position, (layer, folder) in enumerate(zip(atlas.layers, folders, strict=True)):
        link = _url(posixpath.join(folder, LAYER_PAGE), "")
        thumbnail = (
            f'<a href="{link}"><img class="thumbnail" src="{_url(layer.mosaic, "")}" '
            f'alt="Mosaic of {_text(layer.name)}" loading="lazy"></a>'
            if layer.mosaic
            else ""
        )
        body.append(
            f'<tr><td class="number">{position}</td><td>{thumbnail}</td>'
            f'<td><a href="{link}">{_text(layer.name)}</a></td><td>{_text(layer.type)}</td>'
            f"<td>{_text(_format_shape(layer.output_shape))}</td>"
            f'<td class="number">{int(layer.num_filters)}</td>'
            f'<td class="number">{int(layer.num_dead)}</td>'
            f'<td class="number">{int(layer.num_failed)}</td>'
            f'<td class="number">{_text(_format_number(layer.seconds))}</td></tr>'
        )
    body.append("</table>")
    return _page(f"Atlas of {model.name}", body)


def layer_html(atlas: Atlas, folders: Sequence[str], position: int) -> str:
    """A layer's page: its numbers, its mosaic, and a sortable grid of its filters."""
    layer, folder = atlas.layers[position], folders[position]
    links = [f'<a href="{_url(INDEX_PAGE, folder)}">Atlas of {_text(atlas.model.name)}</a>']
    if position > 0:
        previous = posixpath.join(folders[position - 1], LAYER_PAGE)
        links.append(
            f'<a href="{_url(previous, folder)}" rel="prev" data-key="ArrowLeft">'
            f"← {_text(atlas.layers[position - 1].name)}</a>"
        )
    if position + 1 < len(atlas.layers):
        following = posixpath.join(folders[position + 1], LAYER_PAGE)
        links.append(
            f'<a href="{_url(following, folder)}" rel="next" data-key="ArrowRight">'
            f"{_text(atlas.layers[position + 1].name)} →</a>"
        )
    body = [
        f"<nav>{''.join(links)}</nav>",
        '<div class="layer-head"><div>',
        f"<h1>{_text(layer.name)}</h1>",
        f"<p>{_text(layer.type)}, output {_text(_format_shape(layer.output_shape))}:<br>"
        f"{int(layer.num_filters)} filters, {int(layer.num_dead)} dead, "
        f"{int(layer.num_failed)} failed, {_text(_format_number(layer.seconds))} s.</p>",
        '<p>Sort: <button type="button" data-sort="index" aria-pressed="true">by index</button> '
        '<button type="button" data-sort="objective" aria-pressed="false">by objective</button>'
        '</p><p class="hint">obj: final objective, rob: robustness, hf: high-frequency '
        "fraction.<br>← → previous and next layer</p></div>",
    ]
    if layer.mosaic:
        body.append(
            f'<img class="mosaic" src="{_url(layer.mosaic, folder)}" '
            f'alt="Mosaic of {_text(layer.name)}">'
        )
    body.append("</div>")
    body.append('<ul id="tiles">')
    for entry in sorted(layer.filters, key=lambda item: item.index):
        status = _status(entry)
        objective = "" if math.isnan(entry.objective) else repr(float(entry.objective))
        picture = (
            f'<img src="{_url(entry.image, folder)}" alt="filter {int(entry.index)}" '
            'loading="lazy">'
            if entry.image
            else ""
        )
        mark = "" if status == "alive" else f' <span class="{status}">{status}</span>'
        body.append(
            f'<li data-index="{int(entry.index)}" data-objective="{_text(objective)}">'
            f'<a href="{_url(posixpath.join(folder, filter_page(entry.index)), folder)}">'
            f"{picture}#{int(entry.index)}</a>{mark}<br>"
            f"obj {_text(_format_number(entry.objective, 3))}<br>"
            f"rob {_text(_format_number(entry.robustness, 3))}<br>"
            f"hf {_text(_format_number(entry.high_frequency, 3))}</li>"
        )
    body.append("</ul>")
    return _page(f"{layer.name} — atlas of {atlas.model.name}", body)


def filter_html(atlas: Atlas, folders: Sequence[str], walk: Sequence[_Place], step: int) -> str:
    """A filter's page: its image, numbers, loss curve, examples and neighbours."""
    place = walk[step]
    layer, folder, entry = (
        atlas.layers[place.layer_position],
        folders[place.layer_position],
        place.entry,
    )

    def filter_link(other: _Place, key: str, label: str) -> str:
        target = posixpath.join(folders[other.layer_position], filter_page(other.entry.index))
        name = atlas.layers[other.layer_position].name
        relation = "prev" if key == "ArrowLeft" else "next"
        text = f"#{int(other.entry.index)}"
        if other.layer_position != place.layer_position:
            text = f"{_text(name)} #{int(other.entry.index)}"
        return (
            f'<a href="{_url(target, folder)}" rel="{relation}" data-key="{key}">'
            f"{label.format(text)}</a>"
        )

    links = [
        f'<a href="{_url(INDEX_PAGE, folder)}">Atlas of {_text(atlas.model.name)}</a>',
        f'<a href="{_url(posixpath.join(folder, LAYER_PAGE), folder)}">{_text(layer.name)}</a>',
    ]
    if step > 0:
        links.append(filter_link(walk[step - 1], "ArrowLeft", "← filter {}"))
    if step + 1 < len(walk):
        links.append(filter_link(walk[step + 1], "ArrowRight", "filter {} →"))
    position = place.layer_position
    if position > 0:
        previous = posixpath.join(folders[position - 1], LAYER_PAGE)
        links.append(
            f'<a href="{_url(previous, folder)}">previous layer: '
            f"{_text(atlas.layers[position - 1].name)}</a>"
        )
    if position + 1 < len(atlas.layers):
        following = posixpath.join(folders[position + 1], LAYER_PAGE)
        links.append(
            f'<a href="{_url(following, folder)}">next layer: '
            f"{_text(atlas.layers[position + 1].name)}</a>"
        )
    title = f"{layer.name}, filter {int(entry.index)}"
    body = [
        f"<nav>{''.join(links)}</nav>",
        f"<h1>{_text(layer.name)}, filter {int(entry.index)}</h1>",
        '<p class="hint">← → previous and next filter</p>',
    ]
    body.append('<div class="filter">')
    if entry.image:
        body.append(f'<img class="large" src="{_url(entry.image, folder)}" alt="{_text(title)}">')
    else:
        body.append('<p class="large">No image.</p>')
    body.append("<div>")
    rows = [
        ("Status", _status(entry)),
        ("Objective", _format_number(entry.objective)),
        ("Robustness", _format_number(entry.robustness)),
        ("High-frequency fraction", _format_number(entry.high_frequency)),
        ("Steps", str(len(entry.loss_curve))),
        ("Final loss", _format_number(entry.loss_curve[-1]) if entry.loss_curve else "–"),
        ("First loss", _format_number(entry.loss_curve[0]) if entry.loss_curve else "–"),
    ]
    if entry.restarted_from is not None:
        # The objective above is the restart's; the curve and its final loss, the ascent's.
        rows.append(("Restarted from", f"filter {entry.restarted_from}'s picture"))
    body.append('<table id="numbers">')
    body += [f"<tr><th>{_text(label)}</th><td>{_text(value)}</td></tr>" for label, value in rows]
    body.append("</table>")
    body.append("<h2>Loss curve</h2>")
    body.append(loss_curve_svg(entry.loss_curve))
    body.append("</div></div>")
    if entry.examples:
        body.append("<h2>Dataset examples</h2>")
        body.append('<div class="examples">')
        for rank, example in enumerate(entry.examples):
            body.append(
                f'<figure><img src="{_url(example.image, folder)}" '
                f'alt="example {rank + 1}" loading="lazy"><figcaption>activation '
                f"{_text(_format_number(example.activation))}<br>"
                f"{_text(example.source)}</figcaption></figure>"
            )
        body.append("</div>")
    return _page(f"{title} — atlas of {atlas.model.name}", body)


def loss_curve_svg(values: Sequence[float], width: int = 480, height: int = 180) -> str:
    """The loss at every step as an inline SVG line chart.

    Non-finite values break the line (and are counted below it); an empty curve gives a note.
    """
    if not values:
        return "<p>No loss curve.</p>"
    left, right, top, bottom = 64, 12, 10, 28
    plot_width, plot_height = width - left - right, height - top - bottom
    finite = [value for value in values if math.isfinite(value)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = high - low

    def point(step: int, value: float) -> str:
        x = left + (plot_width * step / (len(values) - 1) if len(values) > 1 else plot_width / 2)
        y = top + (plot_height * (high - value) / span if span > 0 else plot_height / 2)
        return f"{x:.1f},{y:.1f}"

    lines, segment = [], []
    for step, value in enumerate(values):
        if math.isfinite(value):
            segment.append(point(step, value))
        elif segment:
            lines.append(segment)
            segment = []
    if segment:
        lines.append(segment)
    parts = [
        f'<svg id="loss-curve" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        "<title>Loss at each step</title>",
        f'<rect x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" '
        'fill="#fafafa" stroke="#bbb"/>',
    ]
    for segment in lines:
        if len(segment) == 1:
            x, y = segment[0].split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="#1f5fbf"/>')
        else:
            parts.append(
                f'<polyline points="{" ".join(segment)}" fill="none" stroke="#1f5fbf" '
                'stroke-width="1.5"/>'
            )
    parts += [
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">'
        f"{_text(_format_number(high))}</text>",
        f'<text x="{left - 4}" y="{top + plot_height}" text-anchor="end">'
        f"{_text(_format_number(low))}</text>",
        f'<text x="{left}" y="{height - 8}">step 0</text>',
        f'<text x="{left + plot_width}" y="{height - 8}" text-anchor="end">'
        f"step {len(values) - 1}</text>",
        "</svg>",
    ]
    missing = len(values) - len(finite)
    if missing:
        parts.append(f"<p>{missing} of {len(values)} steps had a non-finite loss.</p>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Writing and checking.


def _check_path(path, where: str, outdir: str, check_files: bool) -> None:
    if path is None:
        return
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}={path!r} is not a file path")
    normal = posixpath.normpath(path)
    if "\\" in path or posixpath.isabs(path) or normal == ".." or normal.startswith("../"):
        raise ValueError(
            f"{where}={path!r}: image paths are relative to the site folder, with '/', and stay "
            "inside it"
        )
    if check_files and not os.path.isfile(os.path.join(outdir, *normal.split("/"))):
        raise ValueError(f"{where}={path!r}: no such file in {outdir!r}")


def write_site(outdir: str, atlas: Atlas, *, check_files: bool = True) -> list[str]:
    """Writes the atlas's pages into `outdir`.

    Args:
        outdir: The site folder, which holds (or will hold) the images the atlas names.
        atlas: What to show.
        check_files: Whether to check, before writing anything, that every image the atlas
            names exists. Defaults to True.

    Returns:
        The pages written, relative to `outdir`, index.html last.

    Raises:
        ValueError: For an image path that is absolute, leaves `outdir`, or (with check_files)
            names no file; for two filters of a layer with the same index.
    """
    for layer in atlas.layers:
        where = f"layer {layer.name!r}"
        _check_path(layer.mosaic, f"{where} mosaic", outdir, check_files)
        indices = [entry.index for entry in layer.filters]
        if len(set(indices)) != len(indices):
            raise ValueError(f"{where} lists a filter index twice: {sorted(indices)}")
        for entry in layer.filters:
            at = f"{where} filter {entry.index}"
            _check_path(entry.image, f"{at} image", outdir, check_files)
            for rank, example in enumerate(entry.examples):
                _check_path(example.image, f"{at} example {rank}", outdir, check_files)
    folders = [layer_folder(position, layer.name) for position, layer in enumerate(atlas.layers)]
    walk = [
        _Place(position, entry)
        for position, layer in enumerate(atlas.layers)
        for entry in sorted(layer.filters, key=lambda item: item.index)
    ]
    written = []
    for step, place in enumerate(walk):
        page = posixpath.join(folders[place.layer_position], filter_page(place.entry.index))
        artifacts.write_text(os.path.join(outdir, page), filter_html(atlas, folders, walk, step))
        written.append(page)
    for position in range(len(atlas.layers)):
        page = posixpath.join(folders[position], LAYER_PAGE)
        artifacts.write_text(os.path.join(outdir, page), layer_html(atlas, folders, position))
        written.append(page)
    artifacts.write_text(os.path.join(outdir, INDEX_PAGE), index_html(atlas, folders))
    written.append(INDEX_PAGE)
    return written


class _References(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.references = []

    def handle_starttag(self, tag, attributes):
        attributes = dict(attributes)
        if tag == "a" and "href" in attributes:
            self.references.append(("link", attributes["href"]))
        elif tag == "img":
            self.references.append(("image", attributes.get("src")))


def broken_references(outdir: str) -> list[str]:
    """Checks every link and image of every page under `outdir`, without a browser.

    Returns:
        One line per reference that does not name an existing file inside `outdir` (links to
        other sites, data: URLs and links that leave the folder count as broken); empty when
        all resolve.
    """
    root = os.path.realpath(outdir)
    problems = []
    for folder, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if not name.endswith(".html"):
                continue
            page = os.path.join(folder, name)
            parser = _References()
            with open(page, encoding="utf-8") as file:
                parser.feed(file.read())
            shown = os.path.relpath(page, root)
            for kind, reference in parser.references:
                parts = urllib.parse.urlsplit(reference or "")
                if not reference or parts.scheme or parts.netloc:
                    problems.append(f"{shown}: {kind} {reference!r} is not a relative file path")
                    continue
                if not parts.path:  # "#fragment" on the same page
                    continue
                target = os.path.realpath(os.path.join(folder, urllib.parse.unquote(parts.path)))
                if not (target + os.sep).startswith(root + os.sep):
                    problems.append(f"{shown}: {kind} {reference!r} leaves the site folder")
                elif not os.path.isfile(target):
                    problems.append(f"{shown}: {kind} {reference!r} names no file")
    return problems
