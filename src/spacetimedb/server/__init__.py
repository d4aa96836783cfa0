"""The server: HTTP and WebSocket API, identities and tokens, the control database.

Owns: the aiohttp application (routes of SpacetimeDB's client API), the WebSocket protocol sessions (v1 JSON,
v2 and v3 BSATN), authentication, the control database of names and owners.
May import: every lower layer (``host`` and below, ``protocol``).
"""
