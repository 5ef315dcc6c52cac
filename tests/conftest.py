import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Skips the tests marked `tensorflow_only` on another backend."""
    if keras.backend.backend() == "tensorflow":
        return
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (
                marker.args[0] if marker.args else ""
            )
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {reason}"))


@pytest.fixture
def restore_dtype_policy():
    """Restores the global dtype policy a test changes."""
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)
