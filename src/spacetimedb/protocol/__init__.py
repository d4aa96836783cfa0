"""The client protocol: WebSocket message types and their encodings, shared by the server and the client SDK.

Owns: v2 BSATN messages and the v3 batched framing (``v2``); reading module-schema JSON as served to clients
(``schema_json``). The v1 JSON protocol's messages are built by the server (``spacetimedb.server.codecs``).
May import: ``spacetimedb.sats`` only.
"""
