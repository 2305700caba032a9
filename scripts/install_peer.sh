#!/usr/bin/env bash
# Install the peer, the `fer` package (PyPI `fer`), into its own virtual environment for `fer-batch bench`
# and training/eval_peer_expw.py. It never goes into fer-batch's own environment: fer needs an OpenCV 4.x
# wheel (OpenCV 5 has no Haar cascades) and fer-batch pins OpenCV 5, and two cv2 providers in one
# environment break each other.
#
#   scripts/install_peer.sh [VENV_DIR] [--mtcnn]
#
# VENV_DIR defaults to .peer-venv/ in the repo root, where `fer-batch bench` looks for it (about 2.5 GB).
# --mtcnn also installs torch, torchvision and facenet-pytorch for fer's mtcnn=True: about 4.5 GB more, as
# the registry's torchvision needs the CUDA build of torch (a CPU-only torch cannot load its nms operator).
# PYTHON chooses the interpreter the venv is made from (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.peer-venv
mtcnn=0
for arg in "$@"; do
  case "$arg" in
    --mtcnn) mtcnn=1 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) venv="$arg" ;;
  esac
done

# A clean venv: --system-site-packages would put fer-batch's OpenCV 5 beside the peer's OpenCV 4.
"${PYTHON:-python3}" -m venv --clear "$venv"
# fer imports pkg_resources, gone from setuptools 81; every install repeats the cap, as torch asks for a
# newer setuptools.
pip=("$venv/bin/python" -m pip install -q "setuptools<81")

# fer 25.10.3's own requirements cannot be taken as they are: opencv-contrib-python resolves to
# OpenCV 5 (no Haar cascades) and facenet-pytorch's latest release pins an old torch. So fer goes in
# without dependencies and what it imports is listed here; pip then reports fer's unmet requirements
# (facenet-pytorch, matplotlib, moviepy, ...), which fer does not import for what the bench uses.
"${pip[@]}" --no-deps "fer==25.10.3"
"${pip[@]}" "tensorflow-cpu==2.21.0" "opencv-python-headless>=4.9,<5" pandas tqdm requests pillow

if [ "$mtcnn" = 1 ]; then
  # fer's mtcnn=True uses facenet-pytorch; 2.5.3 is its last release without pins on an old torch and NumPy.
  # torch and torchvision go in before TensorFlow is imported (the other order crashes), as the runner does.
  if "${pip[@]}" "torch==2.14.1" "torchvision==0.29.1" && "${pip[@]}" --no-deps "facenet-pytorch==2.5.3" \
      && "$venv/bin/python" -I -c "import facenet_pytorch; from fer.fer import FER; FER(mtcnn=True)"; then
    echo "peer's mtcnn=True ready"
  else
    echo "note: torch/facenet-pytorch did not install; the peer runs with its Haar detector only" >&2
  fi
fi

# The smoke test the bench relies on: fer's own modules import, Haar cascades are present.
"$venv/bin/python" - <<'EOF'
import os
import cv2
from fer.fer import FER
from fer.classes import Video  # noqa: F401

assert os.path.exists(cv2.data.haarcascades + "haarcascade_frontalface_default.xml"), "no Haar cascades in this OpenCV"
FER(mtcnn=False)
print("peer ready: fer", __import__("fer").__version__, "with OpenCV", cv2.__version__)
EOF
echo "peer interpreter: $venv/bin/python"
