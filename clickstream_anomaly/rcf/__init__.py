"""Random Cut Forest in numpy (optionally numba-compiled): the local twin of SageMaker's built-in RCF
(:class:`RandomCutForest`, batch) and of the AWS streaming RCF used by Kinesis Data Analytics
(:class:`StreamingRCF`, score-then-update with attribution). See ``docs/readme-rcf.md``."""

from ._jit import COMPILED
from .forest import RandomCutForest
from .streaming import StreamingRCF

__all__ = ["COMPILED", "RandomCutForest", "StreamingRCF"]
