"""Search inside the detail tree: the next node (opened or not) whose label or value holds some text.

The tree adds nodes lazily, so the search runs over the model's fields
(every field, shown or not), then opens the path to the match and puts the
cursor on it.
"""

from __future__ import annotations

from dicomtui.core.base.tree import Field

from .detail_tree import DetailTree, NodeData


def _walk(fields, path: tuple[Field, ...] = ()):
    for field in fields:
        yield path + (field,)
        yield from _walk(field.children, path + (field,))


def find_path(roots: list[Field], text: str, after: Field | None, forward: bool = True):
    """The path (fields from a root down) to the next match after ``after`` (wrapping), or None."""
    wanted = text.lower()
    paths = list(_walk(roots))
    if not forward:
        paths.reverse()
    start = 0
    if after is not None:
        for position, path in enumerate(paths):
            if path[-1] is after:
                start = position + 1
                break
    for step in range(len(paths)):
        path = paths[(start + step) % len(paths)]
        field = path[-1]
        if wanted in field.label.lower() or wanted in field.value.lower():
            return path
    return None


def _child_with(node, field: Field):
    for child in node.children:
        data = child.data
        if isinstance(data, NodeData) and data.field is field:
            return child
    return None


def reveal(tree: DetailTree, path: tuple[Field, ...]) -> bool:
    """Open the nodes along ``path`` and move the cursor to its end; False if it cannot be shown."""
    node = tree.root
    for position, field in enumerate(path):
        found = _child_with(node, field)
        if found is None:
            return False
        last = position == len(path) - 1
        if not last:
            tree._populate(found)
            found.expand()
            if found.data.flat:  # a flat data set lists every descendant directly under it
                found = _child_with(found, path[-1])
                if found is None:
                    return False
                node = found
                break
        node = found
    def put_cursor() -> None:  # after the refresh that gives the opened nodes their lines
        tree.move_cursor(node)
        tree.scroll_to_node(node, animate=False)
    tree.call_after_refresh(put_cursor)
    return True


def search_tree(tree: DetailTree, text: str, forward: bool = True) -> bool:
    model = tree.model
    if model is None or not text:
        return False
    current = tree.cursor_node
    after = current.data.field if current is not None and isinstance(current.data, NodeData) else None
    path = find_path(model.roots, text, after, forward)
    return path is not None and reveal(tree, path)
