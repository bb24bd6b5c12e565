"""Command-line face of the de-identification: its options and the two modes.

``dicomtui --anonymize OUT.pcapng CAPTURE...`` writes a de-identified capture;
``dicomtui --export DIR --anonymize CAPTURE...`` writes de-identified Part 10 files.
Both print the report (text, or JSON with ``--json``); the mapping file is written
only with ``--anonymize-map FILE``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from dicomtui.core.base.safe_text import safe_text

from .options import OPTIONS

# The profile and the rewriter (pydicom, dicom-anonymizer's tables) are imported when the
# mode runs: building the parser must stay cheap for every other mode.

EXIT_OK, EXIT_USAGE, EXIT_INCOMPLETE = 0, 2, 3


def add_arguments(parser) -> None:
    group = parser.add_argument_group(
        "de-identification (PS3.15 Annex E Basic Application Level Confidentiality Profile)")
    group.add_argument("--anonymize", nargs="?", const="", default=None, metavar="OUT",
                       help="write a de-identified capture to OUT (.pcapng or .pcap); with --export, "
                            "write de-identified Part 10 files instead (then give no OUT)")
    group.add_argument("--anonymize-option", action="append", default=[], metavar="NAME",
                       help="profile option, may be repeated or comma-separated: " + ", ".join(OPTIONS))
    group.add_argument("--anonymize-network", action="store_true",
                       help="also map IP addresses (prefix-preserving) and MAC addresses, consistently")
    group.add_argument("--anonymize-ae", action="store_true", help="also map AE titles, consistently")
    group.add_argument("--anonymize-time-shift", type=float, default=0.0, metavar="SECONDS",
                       help="add SECONDS (may be negative) to every packet timestamp")
    group.add_argument("--strip-pixel-data", action="store_true",
                       help="blank native pixel data (zeros) and drop encapsulated pixel data")
    group.add_argument("--anonymize-map", metavar="FILE",
                       help="write the original -> replacement mapping to FILE (for the site's own records; "
                            "it re-identifies the output: keep it away from the shared capture)")


def wanted(args) -> bool:
    return getattr(args, "anonymize", None) is not None


def fix_captures(args, captures: list[str]) -> list[str]:
    """``--export DIR --anonymize CAPTURE``: argparse took CAPTURE as --anonymize's value.

    With --export, a value naming an existing file is an input; anything else is the
    output capture (``--anonymize OUT --export DIR`` writes both with one mapping).
    """
    if args.export and args.anonymize and os.path.isfile(args.anonymize):
        captures = [args.anonymize] + captures
        args.anonymize = ""
    return captures


@dataclass(frozen=True)
class AnonymizeCommand:
    """What ``--anonymize`` was asked to do, checked (``check`` builds it from the command line)."""

    output: str  # the de-identified capture to write, or "" (Part 10 files only)
    export_dir: str | None  # --export DIR: de-identified Part 10 files
    options: frozenset  # the profile options (``profile.parse_options``)
    map_network: bool = False
    map_ae: bool = False
    time_shift: float = 0.0
    strip_pixel_data: bool = False
    map_path: str | None = None  # --anonymize-map FILE
    overwrite: bool = False
    min_size: int = 0
    json: bool = False


def check(args, captures: list[str], parser) -> AnonymizeCommand:
    """The options checked and typed (``parser.error`` exits on a bad one)."""
    if not args.export and not args.anonymize:
        parser.error("--anonymize needs an output file (e.g. --anonymize shared.pcapng), or --export DIR")
    if args.anonymize and any(os.path.abspath(args.anonymize) == os.path.abspath(c) for c in captures if c != "-"):
        parser.error("--anonymize: the output would overwrite an input capture")
    if args.anonymize and os.path.exists(args.anonymize) and not args.overwrite:
        parser.error(f"--anonymize: {args.anonymize} exists (--overwrite replaces it)")
    if args.export and args.export_format != "part10":
        parser.error("--export with --anonymize writes Part 10 files only (--export-format part10)")
    try:
        from .profile import parse_options

        options = parse_options(args.anonymize_option)
    except ValueError as exc:
        parser.error(str(exc))
    return AnonymizeCommand(output=args.anonymize, export_dir=args.export or None, options=options,
                            map_network=args.anonymize_network, map_ae=args.anonymize_ae,
                            time_shift=args.anonymize_time_shift, strip_pixel_data=args.strip_pixel_data,
                            map_path=args.anonymize_map, overwrite=args.overwrite, min_size=args.min_size,
                            json=bool(args.json))


def run(analysis, command: AnonymizeCommand, on_done=None) -> int:
    """Write what was asked; ``on_done(pseudonyms)``, when given, gets this run's mapping at the end
    (``--html`` in the same run shows the replacements the de-identified capture carries)."""
    from .rewrite import AnonymizeSettings, CaptureAnonymizer, write_capture

    settings = AnonymizeSettings(options=command.options, map_network=command.map_network,
                                 map_ae=command.map_ae, time_shift=command.time_shift,
                                 strip_pixel_data=command.strip_pixel_data)
    anonymizer = CaptureAnonymizer(analysis, settings, keep_datasets=bool(command.export_dir))
    status = EXIT_OK
    try:
        if command.output:
            size = write_capture(anonymizer.run(), command.output)
            anonymizer.report.figures["output_file"] = f"{safe_text(command.output)} ({size} bytes)"
        if command.export_dir:
            from .export import export_part10

            anonymizer.rewrite_messages()  # already done when the capture was written too
            written, skipped = export_part10(anonymizer, command.export_dir, command.overwrite, command.min_size)
            anonymizer.report.figures["part10_files"] = len(written)
            # --json cannot go with --export on the command line: the report goes beside the files
            with open(os.path.join(command.export_dir, "anonymize-report.json"), "w", encoding="utf-8") as stream:
                json.dump(anonymizer.report.as_json(), stream, indent=1)
            print(f"anonymize: wrote {len(written)} de-identified Part 10 file(s) into {safe_text(command.export_dir)}",
                  file=sys.stderr)
            for reason, count in sorted(skipped.items()):
                print(f"  skipped {count}: {reason}", file=sys.stderr)
                status = EXIT_INCOMPLETE
    except OSError as exc:
        print(f"dicomtui: cannot write {safe_text(command.output or command.export_dir)}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_INCOMPLETE
    if command.map_path:
        try:
            with open(command.map_path, "w", encoding="utf-8") as stream:
                json.dump({"warning": "original -> replacement: this file re-identifies the shared data",
                           "mappings": anonymizer.pseudo.mappings}, stream, indent=1, ensure_ascii=False)
        except OSError as exc:
            print(f"dicomtui: cannot write {safe_text(command.map_path)}: {exc.strerror or exc}", file=sys.stderr)
            status = EXIT_INCOMPLETE
    if on_done is not None:
        on_done(anonymizer.pseudo)
    if command.json:
        json.dump(anonymizer.report.as_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(safe_text(line) for line in anonymizer.report.text_lines()))
    return status
