"""Thin AWS Lambda handlers around the core (``clickstream_anomaly``): one package per function.

Each ``app.handler`` parses its event with Powertools, calls the core and emits EMF metrics. The Lambda
asset holds only ``clickstream_anomaly/`` and ``lambdas/``; numpy/pandas come from the AWS SDK for pandas
layer and Powertools from its layer.
"""
