"""The atlas site in a real browser: headless Chromium opens every page from file://.

Needs Debian's `chromium` and `chromium-driver` (.ci/install_chromium.sh installs them). Where
they are missing, the test fails under CI (CI=true) and is skipped elsewhere, with the reason in
a red section at the end of pytest's report: never silently.

Screenshots go to $ATLAS_SCREENSHOTS when it is set, else to the test's temporary folder; the
test prints where.
"""

import os
import time
import urllib.parse
import urllib.request

import atlas_fake as fake
import chromium_driver
import conftest
import pytest

from keras_filters.atlas import site

# Everything a page shows of its links and images, read in the browser.
PAGE_FACTS = """
return {
  links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
  images: Array.from(document.querySelectorAll("img"), img => ({
      src: img.src, loaded: img.complete && img.naturalWidth > 0})),
  handlers: document.querySelectorAll("[onerror], [onload], [onclick]").length,
  scripts: document.scripts.length,
  text: document.body.innerText,
};
"""


@pytest.fixture(scope="module")
def browser():
    path, driver, missing = chromium_driver.find_browser()
    if missing:
        message = f"the atlas browser test needs {missing}: {chromium_driver.INSTALL_HINT}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        conftest.BROWSER_NOT_RUN.append(message)
        pytest.skip(message)
    with chromium_driver.Chromium(path, driver) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    outdir = str(tmp_path_factory.mktemp("atlas") / "site")
    atlas = fake.fake_atlas(outdir)
    pages = site.write_site(outdir, atlas)
    return outdir, atlas, pages


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = os.environ.get("ATLAS_SCREENSHOTS") or str(tmp_path_factory.mktemp("screenshots"))
    os.makedirs(folder, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder


def file_url(outdir: str, page: str) -> str:
    return "file://" + urllib.request.pathname2url(os.path.abspath(os.path.join(outdir, page)))


def url_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "file", url
    return urllib.request.url2pathname(parts.path)


def open_page(chromium, url):
    """Opens `url` and returns its console entries: errors, warnings and logs alike."""
    chromium.console()  # Drop entries from earlier pages.
    chromium.open(url)
    return chromium.console()


def load_all_images(chromium, timeout: float = 10.0) -> dict:
    """Loads the lazy images too, waits until every image has settled, returns PAGE_FACTS."""
    chromium.run(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');"
    )
    deadline = time.monotonic() + timeout
    while not chromium.run("return Array.from(document.images).every(i => i.complete);"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return chromium.run(PAGE_FACTS)


def wait_for_url(chromium, wanted: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while chromium.url != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return chromium.url


def test_every_page_loads_cleanly_with_every_link_and_image_resolving(browser, built):
    outdir, _, pages = built
    checked_links = set()
    for page in pages:
        url = file_url(outdir, page)
        console = open_page(browser, url)
        assert console == [], f"{page}: console says {console}"
        facts = load_all_images(browser)
        assert facts["images"], f"{page} shows no image"
        broken = [image["src"] for image in facts["images"] if not image["loaded"]]
        assert broken == [], f"{page}: images that did not load: {broken}"
        for link in facts["links"]:
            target = url_path(link.split("#")[0])
            assert os.path.isfile(target), f"{page}: link {link} names no file"
            checked_links.add(target)
        assert facts["handlers"] == 0 and facts["scripts"] == 1
        assert browser.alert_text() is None
    assert len(checked_links) == len(pages)  # Every page is reached from some page.


def test_hostile_layer_name_shows_as_text_and_runs_nothing(browser, built):
    outdir, _, _ = built
    folder = site.layer_folder(1, fake.HOSTILE_NAME)
    for page in ("index.html", f"{folder}/index.html", f"{folder}/filter-0003.html"):
        assert open_page(browser, file_url(outdir, page)) == []
        facts = browser.run(PAGE_FACTS)
        assert fake.HOSTILE_NAME in facts["text"]
        assert not any(image["src"].endswith("/x") for image in facts["images"])
        assert facts["handlers"] == 0
        assert browser.alert_text() is None


def test_the_policy_blocks_a_script_that_slipped_into_a_page(browser, built, tmp_path):
    """Defence in depth: were a name ever left unescaped, its script would still not run."""
    outdir, _, _ = built
    with open(os.path.join(outdir, "index.html"), encoding="utf-8") as file:
        text = file.read()
    tampered = text.replace(
        "<h1>", f"{fake.HOSTILE_NAME}<script>document.title = 'pwned'; alert(2)</script><h1>", 1
    )
    path = os.path.join(outdir, "tampered.html")
    with open(path, "w", encoding="utf-8") as file:
        file.write(tampered)
    try:
        console = open_page(browser, file_url(outdir, "tampered.html"))
        assert browser.alert_text() is None
        assert browser.run("return document.title") != "pwned"
        assert any("Content Security Policy" in entry["message"] for entry in console), console
    finally:
        os.remove(path)


def test_arrow_keys_walk_the_filters_across_layers(browser, built, screenshots):
    outdir, atlas, _ = built
    first, second = site.layer_folder(0, "conv1"), site.layer_folder(1, fake.HOSTILE_NAME)
    open_page(browser, file_url(outdir, f"{first}/filter-0006.html"))
    browser.press("ArrowRight")
    assert wait_for_url(browser, file_url(outdir, f"{first}/filter-0007.html")).endswith(
        "0007.html"
    )
    browser.press("ArrowRight")  # The last filter of conv1: on to the next layer's first.
    wanted = file_url(outdir, f"{second}/filter-0000.html")
    assert wait_for_url(browser, wanted) == wanted
    browser.screenshot(os.path.join(screenshots, "filter_page.png"))
    browser.press("ArrowLeft")
    wanted = file_url(outdir, f"{first}/filter-0007.html")
    assert wait_for_url(browser, wanted) == wanted
    assert browser.console() == []


def test_layer_page_sorts_by_objective_and_back(browser, built, screenshots):
    outdir, atlas, _ = built
    folder = site.layer_folder(0, "conv1")
    assert open_page(browser, file_url(outdir, f"{folder}/index.html")) == []
    order = (
        "return Array.from(document.querySelectorAll('#tiles li'), li => Number(li.dataset.index));"
    )
    assert browser.run(order) == list(range(8))
    browser.run("document.querySelector('button[data-sort=objective]').click();")
    objectives = {entry.index: entry.objective for entry in atlas.layers[0].filters}
    ranked = sorted((index for index in objectives if index != 2), key=lambda i: -objectives[i])
    assert browser.run(order) == ranked + [2]  # The failed filter (NaN) last.
    assert browser.url.endswith("#by-objective")
    browser.screenshot(os.path.join(screenshots, "layer_page.png"))
    browser.reload()  # A reload keeps the order.
    assert browser.run(order) == ranked + [2]
    browser.run("document.querySelector('button[data-sort=index]').click();")
    assert browser.run(order) == list(range(8))
    open_page(browser, file_url(outdir, "index.html"))
    browser.screenshot(os.path.join(screenshots, "index_page.png"))
    assert browser.console() == []
