"""Opening the timing screens from the main screen (kept out of app.py, which only binds keys).

``t`` statistics (tui/stats_screen.py; Enter on an association row opens its
ladder), ``L`` the ladder of the selected packet's association
(tui/ladder_screen.py; Enter selects the PDU), ``o`` plots (tui/plots_screen.py).
"""

from __future__ import annotations


def _selected_association(app) -> int | None:
    pdu = app.packet_list.selected_pdu
    if pdu is None or app.analysis is None or not 0 <= pdu < len(app.analysis.pdus):
        return None
    association = app.analysis.pdus[pdu].association
    return association if 0 <= association < len(app.analysis.associations) else None


def open_timing_screen(app, which: str) -> None:
    analysis = app.analysis
    if analysis is None:
        return
    if which == "stats":
        from .stats_screen import StatsScreen

        app.push_screen(StatsScreen(analysis), lambda chosen: _open_ladder(app, chosen))
    elif which == "ladder":
        association = _selected_association(app)
        if association is None:
            app.notify_plain("Select a packet of an association first")
            return
        _open_ladder(app, association)
    elif which == "plots":
        from .plots_screen import PlotsScreen

        app.push_screen(PlotsScreen(analysis, _selected_association(app)))


def _open_ladder(app, association: int | None) -> None:
    if association is None:
        return
    from .ladder_screen import LadderScreen

    app.push_screen(LadderScreen(app.analysis, association),
                    lambda pdu: app.select_pdu(pdu) if pdu is not None else None)
