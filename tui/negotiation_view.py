"""Display additions for association set-up PDUs that need the other PDU of the exchange.

An A-ASSOCIATE-AC answers each presentation context by ID only; which
abstract syntax (SOP class) that ID stands for was in the A-ASSOCIATE-RQ.
Wireshark names it under each AC context; so does this.
"""

from __future__ import annotations

import re

from dicomtui.core.base.tree import Field
from dicomtui.core.base.uids import uid_with_name

_CONTEXT_ID = re.compile(r"ID (\d+)")


def name_accepted_contexts(tree: Field, association) -> Field:
    """The AC's tree with, under each presentation context, the abstract syntax the RQ proposed."""
    if association is None:
        return tree
    children = []
    for child in tree.children:
        match = _CONTEXT_ID.match(child.value) if child.label == "Presentation context" else None
        context = association.contexts.get(int(match.group(1))) if match else None
        if context is not None and context.abstract_syntax:
            proposed = Field("Abstract syntax (proposed in the A-ASSOCIATE-RQ)",
                             uid_with_name(context.abstract_syntax))
            child = Field(child.label, child.value, child.offset, child.length, (proposed, *child.children),
                          child.problem)
        children.append(child)
    return Field(tree.label, tree.value, tree.offset, tree.length, tuple(children), tree.problem)
