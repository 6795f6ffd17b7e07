"""The Universal Commerce Protocol (UCP) adapter: discovery at ``/.well-known/ucp`` and the REST binding of
the checkout capability, mapped onto the native cart, order and checkout-link services.

Protocol version 2026-04-08; UCP shapes are the ``ucp-sdk`` models (0.4.6, generated from the spec's
schemas at that version). No UCP type crosses into ``service/``: this package translates both ways.
"""
