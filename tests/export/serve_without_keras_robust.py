"""Serves an exported model with TensorFlow alone: keras_robust cannot be imported.

    python -I serve_without_keras_robust.py SAVED_MODEL INPUTS.npy OUTPUTS.npz

Writes the `serving_default` outputs on the inputs, and the card read as
plain JSON, to OUTPUTS.npz.
"""

import importlib.abc
import json
import os
import sys


class _BlockKerasRobust(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "keras_robust" or name.startswith("keras_robust."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _BlockKerasRobust())
try:
    import keras_robust  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("keras_robust was importable")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

folder, inputs, outputs = sys.argv[1:4]
loaded = tf.saved_model.load(folder)
serve = loaded.signatures["serving_default"]
result = serve(images=tf.constant(np.load(inputs)))
with open(os.path.join(folder, "assets", "keras_robust.json")) as f:
    card = json.load(f)
assert not any(name.startswith("keras_robust") for name in sys.modules)
np.savez(
    outputs,
    card=np.array(json.dumps(card)),
    **{name: value.numpy() for name, value in result.items()},
)
