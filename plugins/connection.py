"""The built-in DICOM connection decoder, supplied through ``dicomtui_make_connection_decoder``.

The decoder (framing, PDUs, association state, DIMSE assembly) is the sans-IO
protocol core's ``ConnectionDecoder``; this plugin hands it to the engine.
"""

from __future__ import annotations

from dicomtui import hookimpl
from dicomtui.core.protocol.decoder import ConnectionDecoder


@hookimpl
def dicomtui_make_connection_decoder(connection, config, pdu_decoders, host):
    return ConnectionDecoder(connection, config, pdu_decoders, host)
