"""Backend-specific mechanics: the only package that imports TensorFlow or JAX.

The modules of `backend/tensorflow/` are TensorFlow's, those of
`backend/jax/` JAX's, each backend offering the same names (`common.NAMES`),
which this package re-exports. The backends live in subpackages of their
own so that importing one of their modules by its full name (as doctest
and documentation tools do) never rebinds a name of this package: a
TensorFlow module named `keras_robust.backend.random` would replace JAX's
`random` here. Keras's backend (the `KERAS_BACKEND`
environment variable or `~/.keras/keras.json`) picks one when keras_robust
is imported.
"""

import keras

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    from keras_robust.backend.tensorflow import *  # noqa: F403
    from keras_robust.backend.tensorflow import __all__  # noqa: F401
elif BACKEND == "jax":
    from keras_robust.backend.jax import *  # noqa: F403
    from keras_robust.backend.jax import __all__  # noqa: F401
else:
    raise ImportError(
        "keras_robust runs on Keras's TensorFlow and JAX backends. Set "
        "KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing Keras. "
        f"Received: keras.backend.backend()={BACKEND!r}"
    )
