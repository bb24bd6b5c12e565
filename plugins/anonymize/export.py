"""``--export DIR --anonymize``: de-identified Part 10 files, with the capture rewrite's mapping.

The data sets are the ones ``CaptureAnonymizer`` produced (same run, same
replacements), so a file's SOP Instance UID is the one the de-identified capture
carries for it.  File names use the replacement UID, never the original.
"""

from __future__ import annotations

from dicomtui.core.api.export import OutputFolder, safe_component
from dicomtui.plugins.export.part10 import meta_header

from .rewrite import CaptureAnonymizer


def export_part10(anonymizer: CaptureAnonymizer, outdir: str, overwrite: bool = False,
                  min_size: int = 0) -> tuple[list[str], dict[str, int]]:
    """Write every rewritten data set; returns (paths, skipped reasons -> count)."""
    folder = OutputFolder(outdir, overwrite)
    written: list[str] = []
    skipped: dict[str, int] = {}
    analysis = anonymizer.analysis
    for index in sorted(anonymizer.messages):
        rewritten = anonymizer.messages[index]
        message = rewritten.message
        if rewritten.dataset is None:
            continue
        if len(rewritten.dataset) < min_size:
            skipped["smaller than --min-size"] = skipped.get("smaller than --min-size", 0) + 1
            continue
        instance = rewritten.sop_instance or f"{anonymizer.pseudo.uid('message-' + str(index))}"
        sop_class = rewritten.sop_class or message.affected_sop_class
        source_ae = ""
        if 0 <= message.association < len(analysis.associations):
            association = analysis.associations[message.association]
            source_ae = association.calling_ae if message.direction == 0 else association.called_ae
            if anonymizer.settings.map_ae:
                source_ae = anonymizer.pseudo.ae_title(source_ae)
        header = meta_header(sop_class, instance, rewritten.transfer_syntax, source_ae)
        association = f"A{message.association:03d}" if message.association >= 0 else "Ax"
        name = "-".join((association, f"M{message.index:05d}", safe_component(message.command_name, "unknown", 40),
                         safe_component(instance, "no-instance", 64))) + ".dcm"
        path, stream = folder.open_new(name)
        with stream:
            stream.write(header)
            stream.write(rewritten.dataset)
        written.append(str(path))
    incomplete = sum(count for reason, count in anonymizer.report.dropped.items() if "DIMSE messages" in reason)
    if incomplete:
        skipped["messages left out of the rewrite (see the report)"] = incomplete
    return written, skipped
