"""The scorer Lambda (handler: ``lambdas.scorer.app.handler``)."""
