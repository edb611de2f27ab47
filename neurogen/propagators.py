"""Exact propagators of linear ODE systems, evaluated numerically at run time.

For ``dx/dt = A x + b`` with ``A`` constant over a step of length ``h``,
``x(h) = phi x + gamma b`` where ``[[phi, gamma], [0, I]] = expm([[A, I], [0, 0]] h)``
(Van Loan's block form: ``gamma`` is the integral of ``expm(A s)`` over the step).
``scipy.linalg.expm`` is exact for equal time constants and never forms the
symbolic ``1 / (tau1 - tau2)`` terms that cancel badly.  Imported by generated
modules (NumPy); NengoDL builders use ``tf.linalg.expm`` (neurogen.tf_builder).
"""

from functools import lru_cache

import numpy as np
from scipy.linalg import expm


def linear_propagator(matrix, h):
    """``(phi, gamma)`` for the rows ``matrix`` of ``A`` (numbers) over ``h``.

    Shape ``(k, k)`` for a scalar ``h``; ``(k, k, n)`` for a step length per neuron
    (as after a refractory period), computed once per distinct step length.
    """
    A = np.asarray(matrix, dtype=np.float64)
    key, k = A.tobytes(), A.shape[0]
    h = np.asarray(h, dtype=np.float64)
    if h.ndim == 0:
        return _blocks(key, k, float(h))
    lengths, index = np.unique(h, return_inverse=True)
    blocks = [_blocks(key, k, float(length)) for length in lengths]
    phi = np.stack([p for p, _ in blocks], axis=-1)[..., index.reshape(h.shape)]
    gamma = np.stack([g for _, g in blocks], axis=-1)[..., index.reshape(h.shape)]
    return phi, gamma


@lru_cache(maxsize=1024)  # bounded: one entry per parameter set and step length
def _blocks(key, k, h):
    A = np.frombuffer(key, dtype=np.float64).reshape(k, k)
    augmented = np.zeros((2 * k, 2 * k))
    augmented[:k, :k] = A * h
    augmented[:k, k:] = np.eye(k) * h
    exp = expm(augmented)
    phi, gamma = exp[:k, :k].copy(), exp[:k, k:].copy()
    phi.flags.writeable = gamma.flags.writeable = False  # shared by the cache
    return phi, gamma
