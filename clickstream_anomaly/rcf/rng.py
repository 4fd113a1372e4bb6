"""The forest's random numbers: one L'Ecuyer (1988) combined linear congruential generator per tree.

Its state is an int64 array of shape (n_trees, 2) kept with the model, so a saved forest continues the
same draws, and the compiled and pure-Python kernels draw the same numbers. Each tree draws its random
cuts (:mod:`.tree`) and its sampler's arrival weights (:mod:`.sampler`) from its own generator.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

_M1 = 2147483563
_M2 = 2147483399


def seeded_states(seed_seq: np.random.SeedSequence, n_trees: int) -> np.ndarray:
    """Generator states of shape (n_trees, 2), int64, each tree's drawn from ``seed_seq``."""
    seeds = seed_seq.generate_state(2 * int(n_trees), dtype=np.uint64).reshape(int(n_trees), 2)
    states = np.empty((int(n_trees), 2), dtype=np.int64)
    states[:, 0] = (seeds[:, 0] % np.uint64(_M1 - 1)).astype(np.int64) + 1
    states[:, 1] = (seeds[:, 1] % np.uint64(_M2 - 1)).astype(np.int64) + 1
    return states


@jit(inline=True)
def uniform(rng: np.ndarray, t: int) -> float:
    """One uniform draw in (0, 1) from tree ``t``'s generator (31-bit resolution); advances ``rng[t]``."""
    s1 = (rng[t, 0] * 40014) % _M1
    s2 = (rng[t, 1] * 40692) % _M2
    rng[t, 0] = s1
    rng[t, 1] = s2
    z = s1 - s2
    if z < 1:
        z += _M1 - 1
    return z * 4.656613057391769e-10
