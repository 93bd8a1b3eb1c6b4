"""Importing this module lets each feature add its commands to the `concorder` app."""
