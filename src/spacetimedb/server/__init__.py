"""The server process: HTTP and WebSocket API, identities and tokens, the control database.

Owns: the aiohttp application (routes of SpacetimeDB's client API: the table in ``routes``, the handlers by
concern in ``identity_routes``, ``database_routes``, ``read_routes``, ``backup_routes`` and ``websocket_route``,
what they share in ``route_support``), the WebSocket sessions (which only move
bytes between a client and its database's worker), the bounds on client connections (how many, from whom, how
long without a request), authentication (its own tokens and those of trusted OpenID Connect issuers, whose keys
it fetches) and the signing key, the control database of names and owners, and the
start-up decision of how modules are isolated.
May import: ``sats``, ``commitlog``, ``durability``, ``datastore``, ``db`` (for the control database),
``protocol``, ``sandbox`` (probing only) and ``controller``; never ``module``, ``host``, ``sql`` or
``subscription``: module code never runs in this process.
"""
