"""Quantisation of dynamic state, shared by the server's encoder and every client.

Works on Python numbers and numpy arrays alike.
"""

from __future__ import annotations

import math

import numpy as np

from .limits import POSITION_SCALE, YAW_STEPS

_TURN = 2 * math.pi


def quantise_position(metres):
    """Metres -> integer centimetres (rounded to nearest)."""
    if isinstance(metres, np.ndarray):
        return np.rint(metres * POSITION_SCALE).astype(np.int32)
    return int(round(metres * POSITION_SCALE))


def dequantise_position(q):
    return q / POSITION_SCALE


def quantise_yaw(radians):
    """Radians -> [0, YAW_STEPS) steps of a full turn."""
    if isinstance(radians, np.ndarray):
        return (np.rint(radians / _TURN * YAW_STEPS).astype(np.int64) % YAW_STEPS).astype(np.int32)
    return int(round(radians / _TURN * YAW_STEPS)) % YAW_STEPS


def dequantise_yaw(q):
    return q * _TURN / YAW_STEPS


def wrap_yaw_delta(delta):
    """A difference of quantised yaws folded into [-YAW_STEPS/2, YAW_STEPS/2)."""
    half = YAW_STEPS // 2
    return (delta + half) % YAW_STEPS - half
