"""Callbacks: the EMA teacher of ADR."""

from keras_robust.callbacks.ema_teacher import EMATeacher

__all__ = ["EMATeacher"]
