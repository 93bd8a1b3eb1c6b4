"""Conversations, pure and channel-agnostic.

A flow turns (participant state, inbound message, context) into a new state, outbound
messages and audit events. Nothing here touches the network, the database or the clock.
"""
