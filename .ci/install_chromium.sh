#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian for the atlas browser test
# (tests/test_atlas_browser.py). Source it from .ci/run, or run it, before pytest:
#     bash .ci/install_chromium.sh
# Never fails the run by itself: where the install is impossible it says why, and the browser
# test then fails under CI=true with the same install hint.
if command -v chromedriver >/dev/null 2>&1 &&
  { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  echo "chromium: $(chromium --version 2>/dev/null || chromium-browser --version)"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: NOT INSTALLED, this system has no apt-get; install chromium and chromedriver" \
    "by hand for the browser test" >&2
elif [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "chromium: NOT INSTALLED, apt-get needs root; run as root:" \
    "apt-get update && apt-get install -y chromium chromium-driver" >&2
else
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo"
  echo "chromium: installing chromium and chromium-driver from Debian"
  if $as_root apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq \
      chromium chromium-driver >/tmp/apt-chromium.log 2>&1; then
    echo "chromium: $(chromium --version)"
  else
    echo "chromium: NOT INSTALLED, apt-get failed (last lines of /tmp/apt-chromium.log):" >&2
    tail -n 5 /tmp/apt-chromium.log >&2
  fi
fi
