"""The detector Lambda (handler: ``lambdas.detector.app.handler``)."""
