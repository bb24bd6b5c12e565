"""Every expert finding names what it is: a ``code`` in --json, stable across wordings (issue 26).

Guards the whole class: each bundled fixture, analysed with every built-in plugin and the rules on,
must give findings that all carry a dotted code, and the same wording family must not carry two codes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dicomtui.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CAPTURES = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
CODE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")  # the decoder's codes are hyphenated (state.ac-without-rq)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_finding_in_json_carries_a_code(capture, capsys):
    assert main(["--json", str(capture)]) in (0, None)
    document = json.loads(capsys.readouterr().out)
    assert document["expert"], "each fixture gives at least its association milestones"
    for item in document["expert"]:
        assert CODE.match(item["code"]), item


def test_codes_name_the_kind_not_the_instance(capsys):
    """The code is a kind: one code may have many wordings, but it never embeds a value (numbers, AE titles)."""
    seen: dict[str, str] = {}
    for capture in CAPTURES:
        main(["--json", str(capture)])
        for item in json.loads(capsys.readouterr().out)["expert"]:
            seen.setdefault(item["code"], item["rule"])
    assert len(seen) >= 10
    for code, rule in seen.items():
        assert not re.search(r"\d{2,}", code), code
