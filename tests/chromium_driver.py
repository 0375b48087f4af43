"""A minimal WebDriver client for headless Chromium, on the standard library only.

chromedriver speaks the W3C WebDriver protocol as JSON over HTTP, so driving it takes urllib
and a dozen commands: open a page, run a script, press a key, read the console, take a
screenshot. That is all the browser test needs, so it needs no selenium.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

# Debian names the browser "chromium"; other systems "chromium-browser" or "google-chrome".
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "install them with `apt-get update && apt-get install -y chromium chromium-driver` "
    "(Debian, as root), or run .ci/install_chromium.sh"
)

KEYS = {"ArrowLeft": "\ue012", "ArrowRight": "\ue014"}


class WebDriverError(RuntimeError):
    """chromedriver answered a command with an error."""


def find_browser() -> tuple[str | None, str | None, str]:
    """(browser path, chromedriver path, what is missing: "" when both were found)."""
    browser = next(filter(None, (shutil.which(name) for name in BROWSERS)), None)
    driver = shutil.which("chromedriver")
    missing = [
        name
        for name, path in (
            ("chromium (" + " or ".join(BROWSERS) + ")", browser),
            ("chromedriver", driver),
        )
        if path is None
    ]
    return browser, driver, " and ".join(missing)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Chromium:
    """One headless Chromium session driven through chromedriver.

    Use as a context manager; quits the browser and stops chromedriver on exit.
    """

    def __init__(self, browser: str, driver: str, width: int = 1200, height: int = 1000):
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="atlas-chromium-")
        self.log = open(os.path.join(self.profile, "chromedriver.log"), "wb")
        self.process = subprocess.Popen(
            [driver, f"--port={self.port}"], stdout=self.log, stderr=subprocess.STDOUT
        )
        self.session = None
        try:
            self._wait_ready()
            arguments = [
                "--headless=new",
                "--no-sandbox",  # Root (CI, containers) cannot use Chromium's sandbox.
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={os.path.join(self.profile, 'profile')}",
            ]
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": browser, "args": arguments},
                "goog:loggingPrefs": {"browser": "ALL"},
                "unhandledPromptBehavior": "ignore",
            }
            answer = self._command(
                "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}
            )
            self.session = answer["sessionId"]
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebDriverError(f"chromedriver exited with status {self.process.returncode}")
            try:
                if self._command("GET", "/status").get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            time.sleep(0.1)
        raise WebDriverError(f"chromedriver did not answer within {timeout} s")

    def _command(self, method: str, path: str, payload=None):
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
            value = answer.get("value", {})
            raise WebDriverError(
                f"{value.get('error')}: {value.get('message', '')[:500]}"
            ) from None
        return answer.get("value")

    def _session(self, method: str, path: str, payload=None):
        return self._command(method, f"/session/{self.session}{path}", payload)

    def open(self, url: str) -> None:
        """Opens `url` and waits for it to load."""
        self._session("POST", "/url", {"url": url})

    def reload(self) -> None:
        """Reloads the page and waits for it to load."""
        self._session("POST", "/refresh", {})

    @property
    def url(self) -> str:
        return self._session("GET", "/url")

    def run(self, script: str, *arguments):
        """Runs `script` (a function body that reads `arguments`) and returns its value."""
        return self._session("POST", "/execute/sync", {"script": script, "args": list(arguments)})

    def press(self, key: str) -> None:
        """Presses and releases one key ("ArrowRight", "ArrowLeft", or a character)."""
        code = KEYS.get(key, key)
        actions = [{"type": "keyDown", "value": code}, {"type": "keyUp", "value": code}]
        self._session(
            "POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}
        )
        self._session("DELETE", "/actions")

    def console(self) -> list[dict]:
        """The browser console entries since the last call: {"level", "message", ...} each."""
        return self._session("POST", "/se/log", {"type": "browser"})

    def alert_text(self) -> str | None:
        """The text of an open alert, confirm or prompt dialog; None when there is none."""
        try:
            return self._session("GET", "/alert/text")
        except WebDriverError as error:
            if "no such alert" in str(error):
                return None
            raise

    def screenshot(self, path: str) -> None:
        """Saves the visible part of the page as PNG."""
        pixels = base64.b64decode(self._session("GET", "/screenshot"))
        with open(path, "wb") as file:
            file.write(pixels)

    def close(self) -> None:
        if self.session:
            try:
                self._session("DELETE", "")
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()
