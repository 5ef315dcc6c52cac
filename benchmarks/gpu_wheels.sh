#!/usr/bin/env bash
# Downloads into .whl/ (ignored by git) the wheels that `benchmarks/gpu.py`
# needs on a GPU machine that has Python 3.12, JAX and PyTorch but neither
# Keras nor TensorFlow and no network: Keras (the version installed here)
# and the two of its requirements such an image lacks. keras_robust itself
# runs from the source tree. On the GPU machine, with .whl/ copied there:
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax python3 benchmarks/gpu.py \
#       --output GPU_RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
keras_version=$(python -c "import importlib.metadata as m; print(m.version('keras'))")
rm -rf .whl
python -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "${PYTHON_VERSION:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any \
  -d .whl "keras==${keras_version}" namex optree
ls .whl
