"""Clickstream anomaly detection: records, features, and numpy twins of the AWS detectors.

The core package imports no AWS library at module level; the Lambda handlers, the CDK app and the
SageMaker workflows import it, never the other way round.
"""

__version__ = "0.1.0"
