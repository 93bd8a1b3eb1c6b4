"""Channel adapters, the web app, the outbox dispatcher and the `concorder` command."""
