"""The services: recruitment, draw, broadcast, calendar."""
