"""Wire formats: the client protocols, shared by the server, its workers and the client SDK, and the seam
between the server and its workers.

Owns: v2 BSATN messages and the v3 batched framing (``v2``), the legacy v1 JSON protocol (``v1json``), the
typed client messages and the server-message encoder interface common to all three (``messages``), reading
module-schema JSON as served to clients (``schema_json``), and the server <-> worker messages (``seam``, whose
``Deliveries`` builder is ``deliveries``; the deadline page is ``deadline``).
May import: ``spacetimedb.sats`` only.
"""

from __future__ import annotations

from collections.abc import Callable

from . import messages, v1json, v2


def encoder_for(protocol: str) -> messages.ServerEncoder:
    """The server-message encoder of a client protocol (by its WebSocket subprotocol name)."""
    if protocol == v1json.PROTOCOL_V1_JSON:
        return v1json.V1JsonEncoder()
    if protocol in (v2.PROTOCOL_V2, v2.PROTOCOL_V3):
        return v2.V2Encoder(batched=protocol == v2.PROTOCOL_V3)
    raise ValueError(f"unknown protocol {protocol!r}")


def decode_frame(protocol: str, data: bytes) -> list[messages.ClientMessage]:
    """A client frame of ``protocol`` as typed messages; raises ``sats.DecodeError`` naming what is wrong
    (``messages.close_code_of`` says how the client's connection closes for it)."""
    return frame_decoder(protocol)(data)


def frame_decoder(protocol: str) -> Callable[[bytes], list[messages.ClientMessage]]:
    """What ``decode_frame`` calls for ``protocol``: a server keeps it per connection and calls it directly."""
    if protocol == v1json.PROTOCOL_V1_JSON:
        return v1json.decode_frame
    return v2.decode_v3_frame if protocol == v2.PROTOCOL_V3 else v2.decode_v2_frame
