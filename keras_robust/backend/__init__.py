"""Backend-specific mechanics: the only package that imports TensorFlow or JAX.

The modules of this folder are TensorFlow's, those of `backend/jax/` JAX's,
each backend offering the same names. Keras's backend (the `KERAS_BACKEND`
environment variable or `~/.keras/keras.json`) picks one when keras_robust
is imported.
"""

import keras

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    from keras_robust.backend.tensorflow_backend import *  # noqa: F403
    from keras_robust.backend.tensorflow_backend import __all__  # noqa: F401
elif BACKEND == "jax":
    from keras_robust.backend.jax import *  # noqa: F403
    from keras_robust.backend.jax import __all__  # noqa: F401
else:
    raise ImportError(
        "keras_robust runs on Keras's TensorFlow and JAX backends. Set "
        "KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing Keras. "
        f"Received: keras.backend.backend()={BACKEND!r}"
    )
