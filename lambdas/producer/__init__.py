"""The producer Lambda (handler: ``lambdas.producer.app.handler``)."""
