"""The built-in PDU body decoders (PS3.8 9.3), registered for the seven PDU types.

The decoders themselves are pure functions of the protocol core
(``dicomtui.core.protocol.pdu``); this plugin is the seam through which a site
could replace one of them.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.protocol.pdu import (
    decode_abort,
    decode_associate_ac,
    decode_associate_rj,
    decode_associate_rq,
    decode_pdata,
    decode_release,
)


@hookimpl
def dicomtui_register_pdu_decoders(register) -> None:
    register(1, decode_associate_rq)
    register(2, decode_associate_ac)
    register(3, decode_associate_rj)
    register(4, decode_pdata)
    register(5, lambda body: decode_release(body, 5))
    register(6, lambda body: decode_release(body, 6))
    register(7, decode_abort)
