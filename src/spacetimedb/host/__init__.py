"""The module host and the HostController.

Owns: running one database's module (a thread executing reducers one at a time, in arrival order, under a
time budget), lifecycle reducers, scheduled reducers, the module log, subscription evaluation after each
commit, and the ``HostController`` that launches, updates, tears down and relaunches hosts.
May import: ``sats``, ``commitlog``, ``durability``, ``datastore``, ``db``, ``sql``, ``subscription``,
``protocol``, ``module``.
"""
