import pytest
import tensorflow as tf

from keras_robust import backend

pytestmark = pytest.mark.tensorflow_only(
    reason="TensorFlow's backend module, in its execution modes; "
    "tests/backend/test_jax_backend.py tests JAX's"
)


def test_in_xla_context_tells_xla_from_graph_and_eager():
    seen = {}

    def probe(name):
        def body(i):
            # A loop body is a graph nested in the function's.
            seen[f"{name} loop"] = backend.in_xla_context()
            return i + 1

        def fn(x):
            seen[name] = backend.in_xla_context()
            tf.while_loop(lambda i: i < 1, body, [tf.constant(0)])
            return x + 1

        return fn

    assert not backend.in_xla_context()
    backend.compile_function(probe("graph"))(tf.constant(1.0))
    backend.compile_function(probe("xla"), jit_compile=True)(tf.constant(1.0))
    assert seen == {"graph": False, "graph loop": False, "xla": True, "xla loop": True}
