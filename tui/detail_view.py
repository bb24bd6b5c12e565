"""Selection -> detail tree and bytes pane: decodes the selected PDU in a worker and shows it.

A helper of the app (not a widget): it owns what is shown below the packet
list and the byte buffer the bytes pane is looking at.
"""

from __future__ import annotations

from textual.worker import get_current_worker

from .detail_tree import Buffer, NodeData, build_sections
from .index import PacketIndex

SETTLE_SECONDS = 0.03  # a held key scrolls without decoding every row passed over


class DetailPresenter:
    def __init__(self, app) -> None:
        self.app = app
        self.current_pdu: int | None = None
        self.current_pdu_bytes: bytes | None = None
        self.current_holes: list[tuple[int, int]] = []
        self.shown_buffer: Buffer | None = None
        self._dataset_bytes: tuple[int, bytes | None] | None = None
        self._timer = None

    def highlighted(self, pdu_index: int | None) -> None:
        self.current_pdu = pdu_index
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.app.set_timer(SETTLE_SECONDS, self.show_current)

    def show_current(self) -> None:
        self._timer = None
        app = self.app
        if self.current_pdu is None or app.index is None:
            app.detail_tree.show_message("No PDU selected")
            app.bytes_view.show(b"", "bytes")
            return
        pdu_index, index = self.current_pdu, app.index
        app.run_worker(lambda: self._decode(pdu_index, index), thread=True, exclusive=True, group="detail")

    def _decode(self, pdu_index: int, index: PacketIndex) -> None:
        worker = get_current_worker()
        try:
            model, data = build_sections(index, pdu_index)
        except IndexError:
            return  # the PDU list was renumbered meanwhile; a new selection follows
        if not worker.is_cancelled:
            self.app.deliver(self._apply, pdu_index, model, data)

    def _apply(self, pdu_index: int, model, data: bytes | None) -> None:
        if pdu_index != self.current_pdu:
            return
        self.current_pdu_bytes = data
        self.current_holes = model.holes
        self.shown_buffer = Buffer("pdu", pdu_index)
        self.app.bytes_view.show(data, self._bytes_title(pdu_index), holes=model.holes)
        self.app.detail_tree.show_model(model)

    def _bytes_title(self, pdu_index: int) -> str:
        """"PDU n", and for a PDU that travelled inside another layer (TLS) where its bytes came from."""
        analysis = self.app.analysis
        try:
            pdu = analysis.pdus[pdu_index]
            connection = analysis.connections[pdu.connection]
        except (IndexError, AttributeError, TypeError):
            return f"PDU {pdu_index + 1}"
        if not connection.transform:
            return f"PDU {pdu_index + 1}"
        layer = connection.transform.split(" (")[0]
        frames = str(pdu.first_frame) if pdu.first_frame == pdu.last_frame else f"{pdu.first_frame}-{pdu.last_frame}"
        return f"PDU {pdu_index + 1}, from the {layer} records of frame(s) {frames}"

    def field_highlighted(self, data) -> None:
        if not isinstance(data, NodeData):
            return
        buffer = data.buffer
        view = self.app.bytes_view
        if buffer != self.shown_buffer:
            content, title = self._buffer_bytes(buffer)
            self.shown_buffer = buffer
            view.show(content, title, holes=self.current_holes if buffer.kind == "pdu" else None)
        view.highlight(data.field.offset, data.field.length)

    def _buffer_bytes(self, buffer: Buffer) -> tuple[bytes | None, str]:
        analysis = self.app.analysis
        if buffer.kind == "pdu":
            return self.current_pdu_bytes, buffer.title
        message = analysis.messages[buffer.number]
        if buffer.kind == "command":
            return message.command_bytes, buffer.title
        if self._dataset_bytes is None or self._dataset_bytes[0] != buffer.number:
            self._dataset_bytes = (buffer.number, analysis.dataset_bytes(
                message, analysis.config.limits.max_dataset_bytes))
        return self._dataset_bytes[1], buffer.title
