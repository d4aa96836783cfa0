"""A database's worker process: everything one database does, behind the sandbox.

Owns: the worker process itself (``worker``: confining itself, the channel to the server, what its first message
asks for), the ``Database`` (its ``RelationalDB``, module log and module host; creating, opening, updating), the
module host (a thread executing reducers one at a time, in arrival order, under a time budget; lifecycle and
scheduled reducers; subscription evaluation after each commit), its clients (decoding their frames, serving their
requests, encoding what they are sent) and SQL; ``foreign``: modules built by SpacetimeDB's own toolchains (WASM,
JS) behind one syscall layer.
May import: ``sats``, ``commitlog``, ``durability``, ``datastore``, ``db``, ``sql``, ``subscription``,
``protocol``, ``module``, ``sandbox``.
"""
