"""Schedules: ADR's cosine formulas, graph evaluation, validation, serialization."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_robust import schedules

from ..backend_tools import compiled

STEPS = 391 * 3

# (start, end) of ADR's reference table: temperature τ_max → τ_min and
# interpolation ρ_min → ρ_max.
REFERENCE = {
    "cifar10_temperature": (2.5, 2.0),
    "cifar10_interpolation": (0.7, 0.95),
    "cifar10_awp_temperature": (2.5, 1.5),
    "cifar10_awp_interpolation": (0.7, 0.85),
    "cifar100_temperature": (1.5, 1.0),
    "cifar100_awp_temperature": (2.0, 1.0),
    "tinyimagenet_temperature": (2.0, 1.5),
    "tinyimagenet_interpolation": (0.5, 0.9),
}


def _temperature(s, total, tau_max, tau_min):
    """τ_s = τ_min + ½(τ_max − τ_min)(1 + cos(π s / S)), float64."""
    return tau_min + 0.5 * (tau_max - tau_min) * (1.0 + np.cos(np.pi * s / total))


def _interpolation(s, total, rho_min, rho_max):
    """ρ_s = ρ_max + ½(ρ_min − ρ_max)(1 + cos(π s / S)), float64."""
    return rho_max + 0.5 * (rho_min - rho_max) * (1.0 + np.cos(np.pi * s / total))


def _values(schedule, steps, total_steps=None):
    """The schedule at each step, one eager call per step."""
    return np.array([float(schedule(s, total_steps)) for s in steps])


def _graph_values(schedule, steps, total_steps=None):
    """The schedule at each scalar integer step, inside one compiled function
    (int64 steps on TensorFlow, as Keras's iteration counter; int32 on JAX)."""
    function = compiled(
        lambda steps: keras.ops.map(lambda step: schedule(step, total_steps), steps)
    )
    dtype = "int32" if keras.backend.backend() == "jax" else "int64"
    return keras.ops.convert_to_numpy(function(np.asarray(list(steps), dtype)))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_cosine_annealing_matches_adr_formula_at_every_step(name):
    start, end = REFERENCE[name]
    s = np.arange(STEPS + 1, dtype=np.float64)
    if name.endswith("temperature"):
        expected = _temperature(s, STEPS, tau_max=start, tau_min=end)
    else:
        expected = _interpolation(s, STEPS, rho_min=start, rho_max=end)
    schedule = schedules.CosineAnnealing(start, end, total_steps=STEPS)
    np.testing.assert_allclose(
        _graph_values(schedule, range(STEPS + 1)), expected, rtol=1e-6
    )
    np.testing.assert_allclose(
        _values(schedule, range(0, STEPS + 1, 97)), expected[::97], rtol=1e-6
    )
    # The same values with the horizon given by the caller instead.
    horizon_schedule = schedules.CosineAnnealing(start, end)
    np.testing.assert_allclose(
        _graph_values(horizon_schedule, range(STEPS + 1), STEPS), expected, rtol=1e-6
    )


@pytest.mark.parametrize("start,end", [(2.5, 2.0), (0.7, 0.95), (0.5, 0.9)])
def test_cosine_annealing_endpoints_midpoint_and_beyond(start, end):
    schedule = schedules.CosineAnnealing(start, end, total_steps=STEPS)
    assert float(schedule(0)) == pytest.approx(start, rel=1e-6)
    assert float(schedule(STEPS)) == pytest.approx(end, rel=1e-6)
    assert float(schedule(STEPS / 2)) == pytest.approx((start + end) / 2, rel=1e-6)
    for s in (STEPS + 1, 2 * STEPS, 10**7):
        assert float(schedule(s)) == pytest.approx(end, rel=1e-6)
    # Monotone from start to end.
    values = _values(schedule, range(0, STEPS + 1, 7))
    differences = np.diff(values) * np.sign(end - start)
    assert np.all(differences >= -1e-7)


def test_schedule_returns_float32_scalar():
    value = schedules.CosineAnnealing(2.5, 2.0, total_steps=10)(3)
    assert tuple(value.shape) == ()
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


@pytest.mark.tensorflow_only(
    reason="a variable read inside a tf.function; JAX's trainer passes the "
    "horizon's value into the step (tests/training)"
)
def test_tf_function_with_tensor_step_and_variable_horizon_matches_eager():
    cosine = schedules.CosineAnnealing(2.5, 2.0)
    horizon = keras.Variable(float(STEPS), trainable=False, dtype="float32")

    @tf.function
    def graph_value(step):
        return cosine(step, horizon)

    steps = [0, 1, 100, STEPS // 2, STEPS - 1, STEPS, STEPS + 5]
    graph = [float(graph_value(tf.constant(s, dtype=tf.int64))) for s in steps]
    eager = [float(cosine(s, STEPS)) for s in steps]
    np.testing.assert_allclose(graph, eager, rtol=1e-6)
    np.testing.assert_allclose(
        graph, _temperature(np.array(steps[:-1] + [STEPS]), STEPS, 2.5, 2.0), rtol=1e-6
    )
    # The variable is read at run time: a new horizon changes the value
    # without retracing.
    horizon.assign(2.0 * STEPS)
    assert float(graph_value(tf.constant(STEPS, dtype=tf.int64))) == pytest.approx(
        2.25, rel=1e-6
    )


def test_horizon_argument_used_only_without_own_total_steps():
    own = schedules.CosineAnnealing(1.0, 0.0, total_steps=100)
    borrowed = schedules.CosineAnnealing(1.0, 0.0)
    # With its own horizon the caller's is ignored: step 50 of 100 is the middle.
    assert float(own(50, 1000)) == pytest.approx(0.5, rel=1e-6)
    assert float(own(50, keras.Variable(1000.0))) == pytest.approx(0.5, rel=1e-6)
    # Without one, step 50 of 1000.
    expected = 0.5 * (1.0 + math.cos(math.pi * 50 / 1000))
    assert float(borrowed(50, 1000)) == pytest.approx(expected, rel=1e-6)
    assert float(borrowed(50, keras.Variable(1000.0))) == pytest.approx(
        expected, rel=1e-6
    )


def test_linear_annealing_values():
    schedule = schedules.LinearAnnealing(0.0, 1.0, total_steps=40)
    steps = np.arange(0, 61)
    expected = np.minimum(steps / 40.0, 1.0)
    np.testing.assert_allclose(_values(schedule, steps), expected, atol=1e-7)
    decreasing = schedules.LinearAnnealing(3.0, 1.0)
    assert float(decreasing(0, 10)) == pytest.approx(3.0)
    assert float(decreasing(5, 10)) == pytest.approx(2.0)
    assert float(decreasing(10, 10)) == pytest.approx(1.0)
    assert float(decreasing(11, 10)) == pytest.approx(1.0)


def test_constant_values_need_no_horizon():
    schedule = schedules.Constant(0.8)
    assert schedule.total_steps == 1
    for step in (0, 1, 10, 10**6):
        assert float(schedule(step)) == pytest.approx(0.8)
    assert float(schedule(5, 1000)) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "schedule",
    [schedules.CosineAnnealing(2.5, 2.0), schedules.LinearAnnealing(0.0, 1.0)],
)
def test_missing_horizon_error_says_how_to_fix_it(schedule):
    with pytest.raises(ValueError, match="total_steps=None") as info:
        schedule(3)
    message = str(info.value)
    assert type(schedule).__name__ in message
    assert "Pass `total_steps`" in message
    assert "fit()" in message


@pytest.mark.parametrize("cls", [schedules.CosineAnnealing, schedules.LinearAnnealing])
@pytest.mark.parametrize("total_steps", [0, -3, 2.5, True, "10"])
def test_invalid_total_steps(cls, total_steps):
    with pytest.raises(ValueError, match="`total_steps`") as info:
        cls(1.0, 0.0, total_steps=total_steps)
    assert f"Received: total_steps={total_steps!r}" in str(info.value)


@pytest.mark.parametrize("cls", [schedules.CosineAnnealing, schedules.LinearAnnealing])
@pytest.mark.parametrize("argument", ["start", "end"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "a", None])
def test_non_finite_start_end(cls, argument, value):
    kwargs = {"start": 1.0, "end": 0.0, argument: value}
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        cls(**kwargs)
    assert f"Received: {argument}=" in str(info.value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_constant(value):
    with pytest.raises(ValueError, match="Received: value="):
        schedules.Constant(value)


def test_get_accepts_numbers_and_schedules_and_rejects_strings():
    constant = schedules.get(2, "temperature")
    assert isinstance(constant, schedules.Constant)
    assert constant.value == 2.0
    assert isinstance(schedules.get(0.5, "interpolation"), schedules.Constant)
    cosine = schedules.CosineAnnealing(2.5, 2.0)
    assert schedules.get(cosine, "temperature") is cosine
    config = keras.saving.serialize_keras_object(cosine)
    from_dict = schedules.get(config, "temperature")
    assert isinstance(from_dict, schedules.CosineAnnealing)
    assert from_dict.get_config() == cosine.get_config()
    for bad in ("cosine", True, None, [1.0]):
        with pytest.raises(ValueError, match="Received: temperature="):
            schedules.get(bad, "temperature")


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.CosineAnnealing(2.5, 2.0),
        schedules.CosineAnnealing(0.7, 0.95, total_steps=1173),
        schedules.LinearAnnealing(0.0, 1.0, total_steps=10),
        schedules.Constant(1.5),
    ],
)
def test_serialization_round_trip(schedule):
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    assert float(restored(5, 20)) == pytest.approx(float(schedule(5, 20)))
    assert repr(restored) == repr(schedule)


def test_numpy_scalars_are_numbers():
    assert isinstance(schedules.get(np.float32(2.0), "temperature"), schedules.Constant)
    assert isinstance(schedules.get(np.int64(2), "temperature"), schedules.Constant)
    assert (
        schedules.CosineAnnealing(1.0, 0.0, total_steps=np.int64(100)).total_steps
        == 100
    )
