"""Every flow the service knows. Importing this module registers them all."""

from flows import welcome  # noqa: F401
