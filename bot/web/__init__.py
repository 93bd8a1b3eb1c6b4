"""The web application's own pieces: health, metrics, the failure middleware, start-up
checks (bot.bootstrap.create_app puts the application together)."""
