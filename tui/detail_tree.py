"""The detail tree: PDU -> items / PDVs -> DIMSE command -> data set elements.

``build_sections`` (pure) turns one PDU into display sections: a list of
``core.tree.Field`` roots, each tied to the byte buffer its offsets refer to
(the PDU itself, a message's assembled command set, or a message's data set).
Where a command set or data set lies whole inside one PDV of this PDU its
offsets are shifted into PDU coordinates, so the bytes pane highlights it in
the PDU; otherwise the node refers to the assembled bytes of the message and
the bytes pane shows those.

The widget adds tree nodes lazily (children appear when a node is expanded)
and caps how many children one node shows, so a data set of a million
elements does not stall the UI.  Labels are ``rich.text.Text``: values from the
capture are never read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from dicomtui.core.model import Pdu
from dicomtui.core.base.safe_text import safe_text
from dicomtui.core.base.tree import Field
from dicomtui.core.protocol.secrets import masked_pdu
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from .index import PacketIndex
from .validation_view import validation_field

MAX_CHILDREN = 2000


@dataclass(frozen=True, slots=True)
class Buffer:
    """Which bytes a node's offsets refer to: ("pdu", pdu) / ("command", message) / ("dataset", message)."""

    kind: str
    number: int
    name: str = dataclass_field(default="", compare=False)  # e.g. "C-STORE-RQ in PDUs 10-12": numbers the user sees

    @property
    def title(self) -> str:
        if self.kind == "pdu":
            return f"PDU {self.number + 1}"
        what = "command set" if self.kind == "command" else "data set"
        return f"{what} of the {self.name}" if self.name else f"{what} of message {self.number}"


def message_name(message) -> str:
    """A message as the user finds it in the packet list: its command and PDU numbers."""
    pdus = f"PDU {message.first_pdu + 1}" if message.first_pdu == message.last_pdu else \
        f"PDUs {message.first_pdu + 1}-{message.last_pdu + 1}"
    return f"{message.command_name} in {pdus}"


@dataclass(slots=True)
class NodeData:
    field: Field
    buffer: Buffer
    flat: bool = False  # show descendants as one flat list (sequences without subtrees)
    populated: bool = False


@dataclass(slots=True)
class DetailModel:
    """What the tree shows for one PDU: root fields, and per field (by identity) its buffer.

    A field whose id is in ``buffers`` and every descendant without an entry of
    its own refer to that buffer; ``datasets`` are data set roots (flat mode
    applies under them); ``expanded`` are opened when shown.
    """

    roots: list[Field]
    buffers: dict[int, Buffer]
    datasets: set[int]
    expanded: set[int]
    keep: list[Field]  # keeps every field with an id in the maps alive
    links: dict[int, int] = dataclass_field(default_factory=dict)  # field id -> PDU number Enter jumps to
    holes: list[tuple[int, int]] = dataclass_field(default_factory=list)  # PDU byte ranges the capture lacks


def _connection_text(index: PacketIndex, pdu: Pdu) -> str:
    analysis = index.analysis
    connection = analysis.connections[pdu.connection]
    source, destination = (connection.client, connection.server) if pdu.direction == 0 else (
        connection.server, connection.client)
    return f"{source} -> {destination}"


def pdu_overview(index: PacketIndex, pdu: Pdu) -> Field:
    analysis = index.analysis
    frames = str(pdu.first_frame) if pdu.first_frame == pdu.last_frame else f"{pdu.first_frame}-{pdu.last_frame}"
    children = [
        Field("Frames", frames),
        Field("Time", f"{analysis.frame_time(pdu.timestamp):.6f} s after the first frame"),
        Field("Connection", f"{pdu.connection}: {_connection_text(index, pdu)}"),
        Field("Direction", "client -> server" if pdu.direction == 0 else "server -> client"),
        Field("Stream offset", str(pdu.stream_offset)),
        Field("PDU type", f"0x{pdu.pdu_type:02x} ({pdu.type_name})", 0, 1),
        Field("PDU length", str(pdu.length), 2, 4),
    ]
    connection = analysis.connections[pdu.connection]
    if connection.transform:  # carried inside another layer (TLS): what it is, from its transform
        state = connection.transform_state
        summary = getattr(state, "summary", None)
        details = getattr(state, "details", None)
        rows = tuple(Field(label, safe_text(value)) for label, value in (details() if details else ()))
        rows += (Field("Carried in", f"the records of frames {frames} (the wire bytes; this PDU as decrypted)"),)
        children.append(Field(safe_text(connection.transform.split(" ")[0]),
                              safe_text(summary() if summary else connection.transform), 0, 0, rows))
    if 0 <= pdu.association < len(analysis.associations):
        association = analysis.associations[pdu.association]
        children.append(Field("Association", f"A{association.index}: {association.calling_ae} -> "
                                             f"{association.called_ae} ({association.state})"))
    return Field(f"PDU {pdu.index + 1}: {pdu.type_name}", f"frames {frames}, {pdu.total_length} bytes", 0,
                 pdu.total_length, tuple(children),
                 problem="" if pdu.complete else "incomplete: part of it was not captured")


def _message_overview(index: PacketIndex, message, links: dict[int, int] | None = None) -> Field:
    parts = []
    messages = index.analysis.messages

    def link(label: str, number: int) -> Field:
        other = messages[number]
        node = Field(label, f"{message_name(other)}, frame {other.first_frame} (Enter goes there)")
        if links is not None:
            links[id(node)] = other.first_pdu
        return node
    if message.status is not None:
        category, meaning = index.analysis.status_meaning(message.command_field, message.status,
                                                          message.affected_sop_class)
        parts.append(Field("Status", f"0x{message.status:04X} {category}: {meaning}"))
    if message.request is not None:
        parts.append(link("Request", message.request))
    for number, response in enumerate(message.responses[:20], 1):
        parts.append(link(f"Response {number} of {len(message.responses)}", response))
    parts.append(Field("Transfer time", f"{message.transfer_time:.6f} s (first byte -> complete)"))
    if message.first_byte_time is not None:
        parts.append(Field("Time to first byte", f"{message.first_byte_time:.6f} s (request complete -> "
                                                 "first byte of this response)"))
    if message.response_time is not None:
        parts.append(Field("Response time", f"{message.response_time:.6f} s (request complete -> "
                                            "this response complete)"))
    if message.has_dataset:
        syntax = message.transfer_syntax or "unknown"
        parts.append(Field("Data set", f"{message.dataset_length} bytes in {len(message.dataset_fragments)} "
                                       f"fragment(s), {syntax}{' (guessed)' if message.syntax_guessed else ''}"))
    return Field("DIMSE message", f"{message_name(message)}, message ID "
                 f"{message.message_id if message.message_id is not None else message.responded_to}", 0, 0,
                 tuple(parts),
                 problem="" if message.complete else (message.incomplete_reason or "incomplete"))


def build_sections(index: PacketIndex, pdu_index: int) -> tuple[DetailModel, bytes | None]:
    """The detail model of one PDU and its bytes.  Runs in a worker thread (it decodes)."""
    analysis = index.analysis
    pdu = analysis.pdus[pdu_index]
    pdu_buffer = Buffer("pdu", pdu_index)
    overview = pdu_overview(index, pdu)
    model = DetailModel([overview], {id(overview): pdu_buffer}, set(), set(), [overview])
    data = masked_pdu(analysis.pdu_bytes(pdu))  # the bytes pane never shows a passcode or token
    decoded, error = index.decode_pdu(pdu)

    def add_root(field: Field, expand_depth: int) -> None:
        model.roots.append(field)
        model.keep.append(field)
        model.buffers[id(field)] = pdu_buffer
        _expand(field, expand_depth, model)

    if decoded is None and data is None:  # partly captured: show what is there (tui.partial_view)
        from .partial_view import partial_pdu_fields

        data, model.holes = analysis.pdu_bytes_with_holes(pdu)
        data = masked_pdu(data)  # a partly captured A-ASSOCIATE-RQ may still carry a passcode
        add_root(partial_pdu_fields(index, pdu, data, model.holes), 3)
        return model, data
    if decoded is None:
        add_root(Field(pdu.type_name, "", 0, pdu.total_length, problem=f"not decoded: {error}"), 0)
        return model, data
    tree: Field = decoded.tree
    if pdu.pdu_type == 2:
        from .negotiation_view import name_accepted_contexts

        association = analysis.associations[pdu.association] if 0 <= pdu.association < len(
            analysis.associations) else None
        tree = name_accepted_contexts(tree, association)
    if pdu.pdu_type != 4:
        add_root(tree, 2)
        return model, data
    owners = index.pdv_messages(pdu)
    pdv_fields: list[Field] = []
    for number, pdv_field in enumerate(tree.children):
        message = owners[number] if number < len(owners) else None
        pdv = pdu.pdvs[number] if number < len(pdu.pdvs) else None
        extra: list[Field] = []
        if message is not None and pdv is not None:
            data_offset = pdu.pdv_data_offset(number)
            if pdv.is_command and pdv.is_last:
                _fields, command_tree, command_error = index.decode_command(message)
                if command_tree is None:
                    command_tree = Field("Command set", "", 0, len(message.command_bytes),
                                         problem=f"not decoded: {command_error}")
                whole_here = len(message.command_bytes) == pdv.length and message.first_pdu == pdu.index \
                    and _single_command_pdv(pdu, number)
                if whole_here:
                    command_tree = command_tree.shifted(data_offset)
                    model.buffers[id(command_tree)] = pdu_buffer
                else:
                    model.buffers[id(command_tree)] = Buffer("command", message.index, message_name(message))
                model.expanded.add(id(command_tree))
                extra.append(command_tree)
                summary = _message_overview(index, message, model.links)
                model.buffers[id(summary)] = pdu_buffer
                extra.append(summary)
            if not pdv.is_command and pdv.is_last and message.has_dataset:
                decoded_dataset = index.decode_dataset(message)
                if decoded_dataset is None:
                    reason = "incomplete" if not message.complete else "too large or not decodable"
                    extra.append(Field("Data set", f"{message.dataset_length} bytes", 0, 0,
                                       problem=f"not decoded ({reason})"))
                else:
                    dataset_tree = decoded_dataset.tree
                    single = len(message.dataset_fragments) == 1 and not decoded_dataset.inflated and \
                        message.dataset_fragments[0].stream_offset == pdv.stream_offset
                    if single:
                        dataset_tree = dataset_tree.shifted(data_offset)
                        model.buffers[id(dataset_tree)] = pdu_buffer
                    else:
                        model.buffers[id(dataset_tree)] = Buffer("dataset", message.index, message_name(message))
                    model.datasets.add(id(dataset_tree))
                    model.expanded.add(id(dataset_tree))
                    extra.append(dataset_tree)
                checked = validation_field(analysis, message)
                if checked is not None:
                    model.buffers[id(checked)] = pdu_buffer
                    if checked.children:
                        model.expanded.add(id(checked))
                    extra.append(checked)
        if extra:
            pdv_field = Field(pdv_field.label, pdv_field.value, pdv_field.offset, pdv_field.length,
                              pdv_field.children + tuple(extra), pdv_field.problem)
        model.keep.extend(extra)
        model.expanded.add(id(pdv_field))
        pdv_fields.append(pdv_field)
    tree = Field(tree.label, tree.value, tree.offset, tree.length, tuple(pdv_fields), tree.problem)
    model.keep.extend(pdv_fields)
    add_root(tree, 0)
    model.expanded.add(id(tree))
    return model, data


def _expand(field: Field, depth: int, model: DetailModel) -> None:
    if depth < 0 or not field.children:
        return
    model.expanded.add(id(field))
    model.keep.append(field)
    for child in field.children:
        _expand(child, depth - 1, model)


def _single_command_pdv(pdu: Pdu, number: int) -> bool:
    """The command PDV at ``number`` is the command's only fragment in this PDU (first and last)."""
    previous = pdu.pdvs[number - 1] if number > 0 else None
    return previous is None or not previous.is_command or previous.is_last


def _label(field: Field, prefix: str = "") -> Text:
    text = Text(prefix + safe_text(field.label), style="bold" if field.children else "")
    if field.value:
        text.append(": ")
        text.append(safe_text(field.value))
    if field.problem:
        text.append(f"  [{safe_text(field.problem)}]", style="bold red")
    return text


def _flatten(field: Field, depth: int, out: list[tuple[int, Field]], limit: int) -> None:
    for child in field.children:
        if len(out) >= limit:
            return
        out.append((depth, child))
        if child.children:
            _flatten(child, depth + 1, out, limit)


class DetailTree(Tree):
    """Tree of the selected PDU.  Posts ``DetailTree.FieldHighlighted`` as the cursor moves."""

    # As the expert pane: no horizontal scrollbar glyphs above the bytes pane's border (v shows a
    # value whole; the arrow keys still scroll).
    DEFAULT_CSS = """
    DetailTree { height: 1fr; overflow-x: auto; scrollbar-size-horizontal: 0; }
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
        Binding("l,right", "expand_node", "Expand", show=False),
        Binding("h,left", "collapse_node", "Collapse", show=False),
        Binding("asterisk", "expand_all", "Expand all", show=False),
        Binding("less_than_sign", "scroll_sideways(-8)", "Scroll left", show=False),
        Binding("greater_than_sign", "scroll_sideways(8)", "Scroll right", show=False),
    ]

    def action_scroll_sideways(self, columns: int) -> None:
        """Long values (64-character UIDs at 80 columns) are read by scrolling the tree sideways."""
        self.scroll_relative(x=columns, animate=False)

    class FieldHighlighted(Message):
        def __init__(self, data: NodeData | None) -> None:
            super().__init__()
            self.data = data

    class LinkChosen(Message):
        """Enter on a node that names another PDU (request, response)."""

        def __init__(self, pdu_index: int) -> None:
            super().__init__()
            self.pdu_index = pdu_index

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        data = event.node.data
        if isinstance(data, NodeData) and self.model is not None and id(data.field) in self.model.links:
            event.stop()
            self.post_message(self.LinkChosen(self.model.links[id(data.field)]))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("(no PDU selected)", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.flat = False
        self.model: DetailModel | None = None

    def show_model(self, model: DetailModel) -> None:
        self.model = model
        self.clear()
        for field in model.roots:
            self._add(self.root, field, model.buffers.get(id(field), Buffer("pdu", 0)), False)
        self.root.expand()
        self.cursor_line = 0

    def _add(self, parent: TreeNode, field: Field, buffer: Buffer, flat: bool, prefix: str = "") -> TreeNode:
        model = self.model
        buffer = model.buffers.get(id(field), buffer) if model else buffer
        is_dataset = model is not None and id(field) in model.datasets
        data = NodeData(field, buffer, flat or (self.flat and is_dataset))
        if flat:
            data.populated = True
            return parent.add_leaf(_label(field, prefix), data=data)
        node = parent.add(_label(field, prefix), data=data, allow_expand=bool(field.children))
        if model is not None and id(field) in model.expanded:
            self._populate(node)
            node.expand()
        return node

    def show_message(self, text: str) -> None:
        self.model = None
        self.clear()
        self.root.add_leaf(Text(text, style="italic"))

    def set_flat(self, flat: bool) -> None:
        self.flat = flat
        if self.model is not None:
            self.show_model(self.model)

    def _populate(self, node: TreeNode) -> None:
        data = node.data
        if not isinstance(data, NodeData) or data.populated:
            return
        data.populated = True
        field = data.field
        if data.flat:
            entries: list[tuple[int, Field]] = []
            _flatten(field, 0, entries, MAX_CHILDREN + 1)
            for depth, child in entries[:MAX_CHILDREN]:
                self._add(node, child, data.buffer, True, ">" * depth + (" " if depth else ""))
            if len(entries) > MAX_CHILDREN:
                node.add_leaf(Text("… more elements not shown (switch to nested with f)", style="italic"))
            return
        for child in field.children[:MAX_CHILDREN]:
            self._add(node, child, data.buffer, False)
        if len(field.children) > MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(field.children) - MAX_CHILDREN} more not shown", style="italic"))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        self._populate(event.node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        data = event.node.data
        self.post_message(self.FieldHighlighted(data if isinstance(data, NodeData) else None))

    def action_expand_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            self._populate(node)
            node.expand()

    def action_collapse_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.select_node(node.parent)
            self.move_cursor(node.parent)

    def action_expand_all(self) -> None:
        node = self.cursor_node or self.root
        budget = [MAX_CHILDREN * 2]

        def expand(current: TreeNode) -> None:
            if budget[0] <= 0:
                return
            self._populate(current)
            current.expand()
            budget[0] -= len(current.children)
            for child in current.children:
                if child.allow_expand:
                    expand(child)
        expand(node)
