"""The alerter Lambda (handler: ``lambdas.alerter.app.handler``)."""
