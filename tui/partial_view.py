"""The detail tree of a PDU the capture holds only in part: what is there, and where the holes are.

Uses ``core.protocol.partial`` (pure functions over the captured bytes): the PDU
header, every hole as a node of its own (the bytes pane marks it), and for a
P-DATA-TF the PDV headers up to the first hole, the command set when it is
whole, and a data set decoded up to the hole.
"""

from __future__ import annotations

from dicomtui.core.base.tree import Field
from dicomtui.core.model import Pdu
from dicomtui.core.protocol.partial import complete_elements_prefix, pdata_pdvs

from .index import PacketIndex


def _syntax_flags(transfer_syntax: str) -> tuple[bool, bool] | None:
    from pydicom.uid import UID

    syntax = UID(transfer_syntax) if transfer_syntax else None
    if syntax is None or not syntax.is_transfer_syntax or syntax.is_deflated:
        return None
    return syntax.is_implicit_VR, syntax.is_little_endian


def _hole_fields(holes: list[tuple[int, int]]) -> list[Field]:
    return [Field("Not captured", f"bytes {start}-{end - 1} ({end - start} bytes)", start, end - start,
                  problem="missing from the capture") for start, end in holes]


def _dataset_prefix(index: PacketIndex, message, data: bytes, offset: int) -> Field | None:
    """The data set's captured start, decoded up to its last whole element before the hole."""
    syntax = "" if message.syntax_guessed else message.transfer_syntax
    flags = _syntax_flags(syntax)
    if flags is None:
        return Field("Data set (start)", f"{len(data)} bytes captured", offset, len(data),
                     problem="not decoded: unknown or deflated transfer syntax")
    whole = complete_elements_prefix(data, *flags)
    if not whole:
        return Field("Data set (start)", f"{len(data)} bytes captured", offset, len(data),
                     problem="no whole element before the hole")
    decoded = index.analysis.decode_dataset_bytes(data[:whole], syntax)
    if decoded is None:
        return None
    tree = decoded.tree.shifted(offset)
    return Field(f"Data set up to the hole: {tree.label}", f"{whole} of {message.dataset_length} bytes decoded",
                 tree.offset, tree.length, tree.children,
                 problem=f"the rest ({message.dataset_length - whole} bytes) lies behind the hole")


def partial_pdu_fields(index: PacketIndex, pdu: Pdu, data: bytes, holes: list[tuple[int, int]]) -> Field:
    """One root field for a PDU with ``holes`` (PDU-relative ranges, zero-filled in ``data``)."""
    missing = sum(end - start for start, end in holes)
    children: list[Field] = [Field("PDU type", f"0x{pdu.pdu_type:02x} ({pdu.type_name})", 0, 1),
                             Field("PDU length", str(pdu.length), 2, 4)]
    children += _hole_fields(holes)
    problem = f"{missing:,} of {pdu.total_length:,} bytes not captured"
    if pdu.pdu_type != 4:
        return Field(pdu.type_name, "partly captured", 0, pdu.total_length, tuple(children),
                     problem=problem + "; the body is not decoded")
    pdvs, stopped = pdata_pdvs(data, holes)
    messages = index.pdv_messages(pdu)
    for number, pdv in enumerate(pdvs):
        is_command, is_last = bool(pdv.flags & 1), bool(pdv.flags & 2)
        header = [Field("Item length", str(pdv.length), pdv.offset, 4),
                  Field("Presentation context ID", str(pdv.context_id), pdv.offset + 4, 1),
                  Field("Message control header", f"0x{pdv.flags:02x} ({'command' if is_command else 'data set'}"
                        f", {'last' if is_last else 'more'} fragment)", pdv.offset + 5, 1)]
        message = messages[number] if number < len(messages) else None
        whole = pdv.captured >= pdv.data_length
        label = f"PDV, context {pdv.context_id}"
        value = (f"{pdv.data_length} bytes, {'Command' if is_command else 'Data set'}"
                 + ("" if whole else f", {pdv.captured} captured"))
        if message is not None and is_command and is_last and message.complete:
            _fields, command_tree, _error = index.decode_command(message)
            if command_tree is not None:
                header.append(Field(command_tree.label, command_tree.value, 0, 0, command_tree.children))
        if message is not None and not is_command and pdv.captured and message.dataset_fragments and \
                message.dataset_fragments[0].stream_offset == pdu.stream_offset + pdv.data_offset:
            prefix = _dataset_prefix(index, message, data[pdv.data_offset:pdv.data_offset + pdv.captured],
                                     pdv.data_offset)
            if prefix is not None:
                header.append(prefix)
        children.append(Field(label, value, pdv.offset, 4 + pdv.length, tuple(header),
                              problem="" if whole else "data cut by a capture hole"))
    if stopped:
        children.append(Field("PDVs after this point", "not decoded", 0, 0, problem=stopped))
    return Field("P-DATA-TF", f"{len(pdvs)} PDV header(s) decoded", 0, pdu.total_length, tuple(children),
                 problem=problem)
