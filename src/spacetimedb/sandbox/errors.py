"""The one exception the sandbox raises."""

from __future__ import annotations


class SandboxError(Exception):
    """A requested confinement could not be applied; the message says which one and why.

    A worker that gets this must not go on to run untrusted code: it is less confined than it asked to be.
    """
