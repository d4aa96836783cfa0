"""The client protocol: WebSocket message types and their encodings, shared by the server and the client SDK.

Owns: v2 BSATN messages and the v3 batched framing (``v2``); the v1 JSON protocol (``v1json``).
May import: ``spacetimedb.sats`` only.
"""
