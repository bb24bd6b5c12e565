"""A day at a PACS port: thousands of short associations (issue 22).

The day is stamped from the recorded fixtures by bench/make_day.py (each copy of a unit with
its own addresses, ports, ISNs and start time, overlapping others).  What dicomtui finds in
the day must be exactly the sum of what it finds in each unit alone, and the C-MOVE links
must join each sub-association to the C-MOVE of its own copy, not to another device's C-MOVE
with the same AE titles and message ID.  The linearity guard counts function calls (not
seconds) on two day sizes: a loop over all associations per association shows as calls that
grow with the square of the size.
"""

from __future__ import annotations

import cProfile
import contextlib
import importlib.util
import io
import pstats
import sys
from collections import Counter
from pathlib import Path

import pytest
from capture_tools import BENCH
from conftest import analyze_path

from dicomtui.cli import main

C_MOVE_RQ = 0x0021


def _make_day():
    spec = importlib.util.spec_from_file_location("make_day", BENCH / "make_day.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_day"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


make_day = _make_day()


def _day(path: Path, associations: int, seed: int = 3, only: str | None = None) -> dict:
    with open(path, "wb") as out:
        return make_day.generate(out, associations, seed=seed, rate=4.0, devices=40, only=only)


def _tally(analysis, export_dir: Path) -> Counter:
    tally: Counter = Counter()
    for association in analysis.associations:
        tally["association", association.state.value if hasattr(association.state, "value")
              else str(association.state)] += 1
    for message in analysis.messages:
        tally["message", message.command_field, message.status] += 1
    tally["connections"] = len(analysis.connections)
    tally["pdus"] = len(analysis.pdus)
    return tally


def _exported(capture: Path, out: Path) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--export", str(out), str(capture)])
    assert code in (0, 3)
    return sum(1 for _ in out.rglob("*") if _.is_file() and _.suffix != ".json" and _.name != "transactions.csv")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("day")
    path = folder / "day.pcap"
    plan = _day(path, 300)
    return path, plan, folder


def test_day_is_the_sum_of_its_units(day):
    path, plan, folder = day
    expected: Counter = Counter()
    expected_files = 0
    for name, copies in plan["copies"].items():
        if not copies:
            continue
        unit = folder / f"unit_{name}.pcap"
        _day(unit, 1, only=name)
        alone = _tally(analyze_path(str(unit)), folder)
        for key, count in alone.items():
            expected[key] += count * copies
        expected_files += _exported(unit, folder / f"export_{name}") * copies
    analysis = analyze_path(str(path))
    assert _tally(analysis, folder) == expected
    assert plan["associations"] == sum(count for key, count in expected.items() if key[0] == "association")
    assert _exported(path, folder / "export_day") == expected_files
    assert not [item for item in analysis.expert if "gap" in item.message.lower()]


def test_each_sub_association_links_to_its_own_copys_c_move(day):
    """All copies send C-MOVE message ID 1 from QRSCU to QRSCP with destination STORESCP: only
    the time (the C-MOVE pending when the sub-association opened) tells them apart."""
    path, plan, _folder = day
    assert plan["copies"]["find_move"] >= 3
    analysis = analyze_path(str(path))
    linked = [association for association in analysis.associations if association.parent_move is not None]
    moves = [message for message in analysis.messages if message.command_field == C_MOVE_RQ]
    with_destination = [move for move in moves if any(
        analysis.messages[index].status == 0 and analysis.messages[index].command.get(
            "NumberOfCompletedSuboperations") for index in move.responses)]
    assert len(linked) == len(with_destination) == plan["copies"]["find_move"]
    for association in linked:
        move = analysis.messages[association.parent_move]
        mover = analysis.connections[analysis.associations[move.association].connection]
        sub = analysis.connections[association.connection]
        # The device that asked is the device the sub-association went to (make_day's layout).
        assert mover.client.split(":")[0] == sub.server.split(":")[0]
        assert analysis.relations.sub_associations(move.index) == [association.index]


def test_expert_check_samples_each_senders_kind_of_object(tmp_path, monkeypatch):
    """The data set check parses at most ``dataset_check_per_context`` objects of one kind (AE
    titles, direction, SOP class, transfer syntax), however many associations carry them."""
    from dicomtui.plugins import dataset

    path = tmp_path / "two_devices.pcap"
    with open(path, "wb") as out:
        make_day.generate(out, 800, seed=5, rate=4.0, devices=2)
    parsed = []
    real = dataset.decode_dataset
    monkeypatch.setattr(dataset, "decode_dataset", lambda *a, **k: parsed.append(1) or real(*a, **k))
    analysis = analyze_path(str(path))
    kinds = set()
    with_dataset = 0
    for message in analysis.messages:
        if message.has_dataset and message.complete:
            with_dataset += 1
            association = analysis.associations[message.association]
            context = association.contexts.get(message.context_id)
            kinds.add((association.calling_ae, association.called_ae, message.direction,
                       context.abstract_syntax if context else None, message.transfer_syntax))
    assert with_dataset > 500
    assert 0 < len(parsed) <= 16 * len(kinds)
    assert len(parsed) < with_dataset / 2, (len(parsed), with_dataset)  # keyed by association: all of them


def _calls(args: list[str]) -> dict:
    """Calls per function of one run of the CLI in this process."""
    profile = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        profile.enable()
        try:
            main(args)
        finally:
            profile.disable()
    return {f"{file}:{line} {name}": counts[1] for (file, line, name), counts in pstats.Stats(profile).stats.items()}


@pytest.mark.parametrize("mode", [["--json"], ["--expert"], ["--stats"], ["--flow", "1"], ["--jsonl"],
                                  ["--summary", "-Y", "status != 0"], ["--html", "{tmp}/report.html", "--overwrite"]])
def test_no_function_is_called_quadratically_often(tmp_path, mode):
    """4x the associations may cost about 4x the calls of every function, never ~16x."""
    mode = [word.replace("{tmp}", str(tmp_path)) for word in mode]
    small, large = tmp_path / "small.pcap", tmp_path / "large.pcap"
    _day(small, 100)
    _day(large, 400)
    _calls(mode + [str(small)])  # imports and first-use caches out of the way
    before, after = _calls(mode + [str(small)]), _calls(mode + [str(large)])
    grown = {name: (count, before.get(name, 0)) for name, count in after.items()
             if count > 1000 and 0 < before.get(name, 0) and count > 6 * before[name]}
    # (a function not called at all on the small day is a branch the small day did not take,
    # e.g. renumbering connections recognised out of order, not growth)
    assert not grown, f"{' '.join(mode)}: calls (400 vs 100 associations): {grown}"


def test_move_links_take_malformed_originator_elements_in_their_stride():
    """An empty Move Originator Message ID (pynetdicom writes length 0) decodes as [], a malformed one
    as a list: neither is evidence, and neither may stop the linking (it did: 'unhashable type')."""
    from types import SimpleNamespace

    from dicomtui.plugins import linking

    def association(index, calling, called, start):
        return SimpleNamespace(index=index, calling_ae=calling, called_ae=called, start_time=start,
                               parent_move=None)

    move = SimpleNamespace(index=0, association=0, command_field=C_MOVE_RQ, message_id=[1, 2],
                           command={"MoveDestination": "STORESCP"}, start_time=10.0, end_time=10.1, responses=[])
    stores = [SimpleNamespace(index=index, association=1, command_field=0x0001, message_id=index,
                              command={"MoveOriginatorMessageID": value,
                                       "MoveOriginatorApplicationEntityTitle": "QRSCU"})
              for index, value in ((1, []), (2, [7, 8]))]
    analysis = SimpleNamespace(messages=[move, *stores],
                               associations=[association(0, "QRSCU", "QRSCP", 9.9),
                                             association(1, "QRSCP", "STORESCP", 10.05)])
    linking.dicomtui_complete_model(analysis)
    assert analysis.associations[1].parent_move == 0  # by AE titles and time
