"""SageMaker workflows for the clickstream detectors: prepare data, train, deploy, invoke, clean up.

Every AWS call goes through plain boto3 clients passed in by the caller
(:mod:`clickstream_anomaly.aws.training.session`), so the requests are exactly the documented API shapes and
tests can run them against moto in-process.
``--local`` runs the numpy twins behind the same interface (:mod:`clickstream_anomaly.aws.training.local`).
Modules: images, prepare, jobs, endpoints, invoke, cleanup, costs, local, session, tags, errors.
"""
