"""The aggregator Lambda (handler: ``lambdas.aggregator.app.handler``)."""
