import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def restore_dtype_policy():
    """Restores the global dtype policy a test changes."""
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)
