"""An example expert rule: associations from calling AE titles outside an allow-list.

Options (``dicomtui -o NAME:VALUE``):
- ``allowed_calling_aes``: comma-separated AE titles; empty (the default) turns the rule off.
- ``example_raise``: when true the rule raises, to demonstrate failure isolation.
"""

from dicomtui import hookimpl


@hookimpl
def dicomtui_register_rule_options(register):
    register("allowed_calling_aes", "", "comma-separated calling AE titles allowed to associate (empty: no check)")
    register("example_raise", False, "make the example rule raise (demonstrates plugin failure isolation)")


@hookimpl
def dicomtui_check_association(association, analysis, report):
    allowed_text = analysis.config.option("allowed_calling_aes", "")
    allowed = {title.strip() for title in allowed_text.split(",") if title.strip()}
    if not allowed or not association.calling_ae:
        return
    if association.calling_ae.strip() not in allowed:
        report.add("warning", "negotiation",
                   f"calling AE title {association.calling_ae!r} is not in the allow-list "
                   f"({', '.join(sorted(allowed))}) — a device that should not talk to "
                   f"{association.called_ae!r}, or a list to update",
                   frame=association.first_frame, association=association.index,
                   pdu=association.request_pdu, code="allowlist.calling_ae_not_allowed")


@hookimpl
def dicomtui_check_analysis(analysis, report):
    if analysis.config.option("example_raise", False):
        raise RuntimeError("example_raise is set: this rule fails on purpose")
