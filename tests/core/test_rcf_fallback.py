"""The pure-Python path (no numba, as in the deployed Lambda) gives the same numbers as the compiled one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from clickstream_anomaly.rcf import COMPILED

SCRIPT = """
import json, sys
import numpy as np
from clickstream_anomaly.rcf import COMPILED, RandomCutForest, StreamingRCF
rng = np.random.default_rng(11)
X = rng.normal(size=(120, 2)); X[100] = [6.0, -6.0]; X[50:55] = X[40]
m = StreamingRCF(dimensions=2, num_trees=6, sample_size=24, shingle_size=2, time_decay=0.02, random_state=5)
s, h, l = m.process(X)
b = RandomCutForest(num_trees=5, num_samples_per_tree=20, random_state=3).fit(X).score(X)
print(json.dumps({"compiled": COMPILED, "s": s.tolist(), "h": h.tolist(), "l": l.tolist(), "b": b.tolist(),
                  "state": m.to_bytes().hex()}))
"""


def _run(no_numba: bool) -> dict:
    env = dict(os.environ)
    env.pop("CLICKSTREAM_ANOMALY_NO_NUMBA", None)
    if no_numba:
        env["CLICKSTREAM_ANOMALY_NO_NUMBA"] = "1"
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_pure_python_path_matches_compiled_path() -> None:
    pure = _run(True)
    assert pure["compiled"] is False
    default = _run(False)
    assert default["compiled"] is COMPILED
    for key in ("s", "h", "l", "b"):
        np.testing.assert_array_equal(np.array(pure[key]), np.array(default[key]), err_msg=key)
    assert pure["state"] == default["state"]
