"""Upstream's smoketest module ``rls-broken-private-table``: a rule on a private table, which publishing refuses."""

from spacetimedb import Identity, client_visibility_filter, table


@table
class User:
    identity: Identity


PERSON_FILTER = client_visibility_filter('SELECT * FROM "user" WHERE identity = :sender')
