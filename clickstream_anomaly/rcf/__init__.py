"""Random Cut Forest in numpy (optionally numba-compiled): the local twin of SageMaker's built-in RCF
(:class:`RandomCutForest`, batch) and of the AWS streaming RCF used by Kinesis Data Analytics
(:class:`StreamingRCF`, score-then-update with attribution).

The modules follow the nouns of the AWS Java library (aws/random-cut-forest-by-aws):

* estimators: :mod:`.forest` (``RandomCutForest``), :mod:`.streaming` (``StreamingRCF``), :mod:`.outlier`
  (``offset_``, ``decision_function``, ``predict``);
* the state, as named tuples of numpy arrays: :mod:`.nodes` (node store), :mod:`.boxes` (bounding-box
  cache), :mod:`.sampler` (time-decayed reservoirs), :mod:`.pointstore` (point store), :mod:`.rng`
  (per-tree generators), :mod:`.arrays` (the whole forest), :mod:`.workspace` (kernel scratch space);
* the kernels: :mod:`.tree` (random cuts, insert, delete), :mod:`.walks` (score and attribution),
  :mod:`.executor` (every tree: update, process, build);
* :mod:`.state`: the saved-state format and its older versions; :mod:`._jit`: optional compilation.
"""

from ._jit import COMPILED
from .forest import RandomCutForest
from .streaming import StreamingRCF

__all__ = ["COMPILED", "RandomCutForest", "StreamingRCF"]
