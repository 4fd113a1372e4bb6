"""The cloud side: everything that talks to AWS at run time, kept out of the core.

* :mod:`.config`: the Lambda functions' configuration from their environment;
* :mod:`.clients`: boto3 clients (botocore ``standard`` retries, ``AWS_ENDPOINT_URL``);
* :mod:`.s3_store`: S3 objects as state with conditional writes;
* :mod:`.runtime`: each Lambda function's work around the core (aggregate, detect, alert, score, produce);
* :mod:`.kinesis_reader`: reads a stream's shards into Lambda-shaped events (local runs, end-to-end tests);
* :mod:`.training`: the SageMaker workflows (prepare, train, deploy, invoke, clean up) in plain boto3.

The core (every other module of :mod:`clickstream_anomaly`) never imports this package; boto3 itself is
imported inside the functions that call AWS, so importing this package costs nothing.
"""
