"""The streaming runtime's core: window aggregation, alerting, and a local event-source driver.

Everything here is plain Python + numpy/pandas; the Lambda handlers in ``lambdas/`` are thin wrappers.
"""
