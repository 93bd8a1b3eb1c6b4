"""Delivery: the dispatcher, rate limits shared across instances, outcomes, channel
health and queue depth."""
