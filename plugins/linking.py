"""Links across connections: a C-MOVE and the sub-association its SCP opened to the destination.

PS3.4 C.4.2: the Q/R SCP (the C-MOVE's called AE) opens a new association to the
move destination AE and sends C-STORE-RQs that carry Move Originator AE title
and Message ID.  The link is made from that evidence when present, else from
AE titles and timing (the sub-association starts while the C-MOVE is pending).
"""

from __future__ import annotations

from dicomtui import hookimpl

C_MOVE_RQ = 0x0021


def _move_window(analysis, move) -> tuple[float, float]:
    end = move.end_time
    for index in move.responses:
        end = max(end, analysis.messages[index].end_time)
    return move.start_time, end


@hookimpl
def dicomtui_complete_model(analysis):
    moves = [message for message in analysis.messages if message.command_field == C_MOVE_RQ]
    if not moves:
        return
    stores_by_association: dict[int, list] = {}
    for message in analysis.messages:
        if message.command_field == 0x0001:
            stores_by_association.setdefault(message.association, []).append(message)
    for association in analysis.associations:
        if association.parent_move is not None:
            continue
        stores = stores_by_association.get(association.index, [])
        best = None
        for move in moves:
            if move.association == association.index:
                continue
            move_association = analysis.associations[move.association]
            originator_ok = any(
                store.command.get("MoveOriginatorMessageID") == move.message_id
                and str(store.command.get("MoveOriginatorApplicationEntityTitle", "")).strip()
                == move_association.calling_ae.strip()
                for store in stores
            )
            start, end = _move_window(analysis, move)
            in_window = start <= association.start_time <= end + 1.0
            destination = str(move.command.get("MoveDestination", "")).strip()
            titles_ok = (association.called_ae.strip() == destination
                         and association.calling_ae.strip() == move_association.called_ae.strip())
            if originator_ok or (titles_ok and in_window):
                best = move
                if originator_ok:
                    break
        if best is not None:
            association.parent_move = best.index
