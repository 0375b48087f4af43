"""The static site, checked without a browser: escaping, safe names, links, determinism."""

import dataclasses
import html.parser
import json
import math
import os
import re

import atlas_fake as fake
import pytest

from keras_filters.atlas import site

HOSTILE = fake.HOSTILE_NAME
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture
def built(tmp_path):
    outdir = str(tmp_path / "site")
    atlas = fake.fake_atlas(outdir)
    pages = site.write_site(outdir, atlas)
    return outdir, atlas, pages


def read(outdir, page):
    with open(os.path.join(outdir, page), encoding="utf-8") as file:
        return file.read()


class Tags(html.parser.HTMLParser):
    """Every start tag with its attributes, and the text of every script."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self.in_script = [], [], False

    def handle_starttag(self, tag, attributes):
        self.tags.append((tag, dict(attributes)))
        self.in_script = tag == "script"
        if self.in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self.in_script = False

    def handle_data(self, data):
        if self.in_script:
            self.scripts[-1] += data


def test_pages_are_the_index_every_layer_and_every_filter(built):
    outdir, atlas, pages = built
    expected = {"index.html"}
    for position, layer in enumerate(atlas.layers):
        folder = site.layer_folder(position, layer.name)
        expected.add(f"{folder}/index.html")
        expected |= {f"{folder}/{site.filter_page(entry.index)}" for entry in layer.filters}
    assert set(pages) == expected
    assert len(pages) == 1 + 3 + 8 + 6 + 5
    assert pages[-1] == "index.html"  # Written last: a half-written site has no index.
    leftovers = [name for _, _, names in os.walk(outdir) for name in names if ".tmp-" in name]
    assert leftovers == []


def test_every_link_and_image_resolves(built):
    outdir, _, _ = built
    assert site.broken_references(outdir) == []


def test_broken_references_finds_a_missing_image_and_an_outside_link(built):
    outdir, atlas, _ = built
    folder = site.layer_folder(0, atlas.layers[0].name)
    os.remove(os.path.join(outdir, folder, "images", "filter-0003.png"))
    page = os.path.join(outdir, "index.html")
    with open(page, "a", encoding="utf-8") as file:
        file.write('<a href="../elsewhere.html">x</a><img src="https://example.org/a.png">')
    problems = site.broken_references(outdir)
    assert any("filter-0003.png" in line and "names no file" in line for line in problems)
    assert any("leaves the site folder" in line for line in problems)
    assert any("not a relative file path" in line for line in problems)


def test_hostile_layer_name_is_text_on_every_page_that_names_it(built):
    outdir, atlas, pages = built
    hostile_folder = site.layer_folder(1, HOSTILE)
    naming = [page for page in pages if ESCAPED in read(outdir, page)]
    # The index, the layer's own page and filter pages, and its neighbours' pages link to it.
    assert "index.html" in naming
    assert f"{hostile_folder}/index.html" in naming
    assert all(f"{hostile_folder}/{site.filter_page(i)}" in naming for i in range(6))
    assert f"{site.layer_folder(0, 'conv1')}/filter-0007.html" in naming  # "next" crosses layers
    for page in pages:
        text = read(outdir, page)
        assert HOSTILE not in text
        assert "<cat>" not in text and "<model>" not in text and "<b>" not in text
        parser = Tags()
        parser.feed(text)
        handlers = [
            (tag, name) for tag, items in parser.tags for name in items if name.startswith("on")
        ]
        assert handlers == []
        assert parser.scripts == [site.SCRIPT]
        images = [items["src"] for tag, items in parser.tags if tag == "img"]
        assert all(not source.startswith(("data:", "http", "/")) for source in images)


def test_every_page_allows_only_its_own_script_and_style(built):
    outdir, _, pages = built
    policy = re.compile(r'http-equiv="Content-Security-Policy" content="([^"]*)"')
    for page in pages:
        (found,) = policy.findall(read(outdir, page))
        assert "default-src 'none'" in found
        assert "unsafe-inline" not in found
        assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]{44}';", found)


@pytest.mark.parametrize(
    "name",
    [
        HOSTILE,
        "..",
        ".",
        "",
        "a/b",
        "a_b",
        "vgg16/block5_conv1",
        "x" * 300,
        "bloc ü 5",
        "CON",
        "-rf *",
        "name\x00with\nbreaks",
    ],
)
def test_layer_folders_are_safe_names(name):
    folder = site.layer_folder(12, name)
    assert re.fullmatch(r"012-[A-Za-z0-9][A-Za-z0-9_-]*", folder), folder
    assert len(folder) <= 4 + site.MAX_FOLDER_NAME


def test_layer_folders_stay_apart_for_names_that_reduce_alike():
    names = ["a/b", "a_b", "a b", "a<b"]
    assert len({site.layer_folder(position, name) for position, name in enumerate(names)}) == 4
    assert site.layer_folder(3, "block1_conv1") == "003-block1_conv1"


@pytest.mark.parametrize("path", ["../outside.png", "/etc/passwd", "a/../../b.png", "a\\b.png"])
def test_image_paths_must_stay_in_the_site(tmp_path, path):
    outdir = str(tmp_path / "site")
    atlas = fake.fake_atlas(outdir, layers=(("conv", "Conv2D", (None, 4, 4, 2), 2),))
    layer = atlas.layers[0]
    bad = dataclasses.replace(layer.filters[0], image=path)
    atlas = dataclasses.replace(atlas, layers=(dataclasses.replace(layer, filters=(bad,)),))
    with pytest.raises(ValueError, match="stay inside it"):
        site.write_site(outdir, atlas, check_files=False)


def test_a_missing_image_is_named_before_any_page_is_written(tmp_path):
    outdir = str(tmp_path / "site")
    atlas = fake.fake_atlas(outdir, layers=(("conv", "Conv2D", (None, 4, 4, 2), 2),))
    layer = atlas.layers[0]
    bad = dataclasses.replace(layer.filters[1], image="000-conv/images/nothing.png")
    atlas = dataclasses.replace(
        atlas, layers=(dataclasses.replace(layer, filters=(layer.filters[0], bad)),)
    )
    with pytest.raises(ValueError, match=r"filter 1 image='000-conv/images/nothing.png': no such"):
        site.write_site(outdir, atlas)
    assert not any(name.endswith(".html") for _, _, names in os.walk(outdir) for name in names)


def test_same_atlas_gives_the_same_bytes(tmp_path):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    pages = site.write_site(first, fake.fake_atlas(first))
    assert site.write_site(second, fake.fake_atlas(second)) == pages
    assert all(read(first, page) == read(second, page) for page in pages)


def test_atlas_from_plain_json_data_gives_the_same_site(tmp_path, built):
    outdir, atlas, pages = built

    def plain(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    data = json.loads(json.dumps(plain(dataclasses.asdict(atlas))))
    data["model"]["details"] = dict(data["model"]["details"])
    again = str(tmp_path / "again")
    os.rename(outdir, again)
    assert site.write_site(again, site.atlas_from_dict(data)) == pages


def test_atlas_from_dict_names_the_bad_field():
    data = {"model": {"name": "m"}, "layers": [{"name": "c", "num_filters": 1, "filters": [{}]}]}
    with pytest.raises(ValueError, match=r"layers\[0\]\.filters\[0\]: missing field 'index'"):
        site.atlas_from_dict(data)
    data["layers"][0]["filters"] = [{"index": 0, "objective": "high"}]
    with pytest.raises(ValueError, match=r"objective='high' is not a number"):
        site.atlas_from_dict(data)
    data["layers"][0]["filters"] = [{"index": 0, "objective": 1.0, "restarted_from": "3"}]
    with pytest.raises(
        ValueError, match=r"filters\[0\]\.restarted_from must be a filter index or null, got '3'"
    ):
        site.atlas_from_dict(data)


def test_filter_pages_link_their_neighbours_across_layers(built):
    outdir, atlas, _ = built
    first, second = site.layer_folder(0, "conv1"), site.layer_folder(1, HOSTILE)

    def keyed_links(page):
        return dict(
            re.findall(r'<a href="([^"]*)" rel="[a-z]*" data-key="(Arrow\w+)"', read(outdir, page))
        )

    assert keyed_links(f"{first}/filter-0000.html") == {"filter-0001.html": "ArrowRight"}
    assert keyed_links(f"{first}/filter-0007.html") == {
        "filter-0006.html": "ArrowLeft",
        f"../{second}/filter-0000.html": "ArrowRight",
    }
    last = f"{site.layer_folder(2, atlas.layers[2].name)}/filter-0004.html"
    assert set(keyed_links(last).values()) == {"ArrowLeft"}


def test_layer_page_tiles_carry_their_sort_keys(built):
    outdir, atlas, _ = built
    text = read(outdir, f"{site.layer_folder(0, 'conv1')}/index.html")
    keys = re.findall(r'<li data-index="(\d+)" data-objective="([^"]*)">', text)
    assert [int(index) for index, _ in keys] == list(range(8))
    objectives = {entry.index: entry.objective for entry in atlas.layers[0].filters}
    assert keys[2][1] == ""  # The failed filter: NaN objective, sorted last.
    for index, value in keys:
        if value:
            assert float(value) == objectives[int(index)]


def test_loss_curve_svg_scales_to_the_plot_and_breaks_at_nan():
    svg = site.loss_curve_svg([0.0, 1.0, 2.0, math.nan, 4.0, 3.0], width=164, height=138)
    lines = re.findall(r'<polyline points="([^"]*)"', svg)
    assert len(lines) == 2
    first = [tuple(map(float, point.split(","))) for point in lines[0].split()]
    # Plot from x=64 to 152 over 5 steps, y from 10 (the maximum, 4) to 110 (the minimum, 0).
    assert first == [(64.0, 110.0), (81.6, 85.0), (99.2, 60.0)]
    second = [tuple(map(float, point.split(","))) for point in lines[1].split()]
    assert second == [(134.4, 10.0), (152.0, 35.0)]
    assert "1 of 6 steps had a non-finite loss" in svg
    assert "<circle" in site.loss_curve_svg([1.0])
    assert site.loss_curve_svg([]) == "<p>No loss curve.</p>"
