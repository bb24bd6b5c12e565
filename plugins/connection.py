"""The built-in DICOM connection decoder, supplied through ``dicomtui_make_connection_decoder``.

The decoder (framing, PDUs, association state, DIMSE assembly) is the sans-IO
protocol core's ``ConnectionDecoder``; this plugin hands it to the engine, with
the host's outbox, so its events are applied as they come rather than returned
(a plugin wrapping ``ConnectionDecoder`` without one gets them returned).
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.protocol.decoder import ConnectionDecoder


@hookimpl
def dicomtui_make_connection_decoder(connection, config, pdu_decoders, host):
    return ConnectionDecoder(connection, config, pdu_decoders, host, outbox=getattr(host, "outbox", None))
