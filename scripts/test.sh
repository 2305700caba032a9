#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine: installs the project with its test and ray extras
# (the Ray backend's tests start a local Ray instance), Debian's chromium for the browser check of the HTML
# report and opencv-data for the Haar cascade, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# opencv-data: the Haar cascade files OpenCV 5's wheels no longer ship (--detector haar, used by the light tests)
if { ! command -v chromium >/dev/null 2>&1 || [ ! -d /usr/share/opencv4/haarcascades ]; } \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium opencv-data >/dev/null) \
    || echo "note: could not install chromium and opencv-data; the browser test will be skipped, haar tests fail" >&2
fi
python -m pip install -q -e ".[test,ray]"
python -m pytest -q -p no:cacheprovider "$@"
