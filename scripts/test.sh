#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine: installs the project with its test and ray extras
# (the Ray backend's tests start a local Ray instance), Debian's chromium for the browser check of the HTML
# report, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "note: could not install chromium; the browser test will be skipped" >&2
fi
python -m pip install -q -e ".[test,ray]"
python -m pytest -q -p no:cacheprovider "$@"
