"""The display-filter language: parsing, errors with positions, and matching over real fixtures."""

import pytest
from dicomtui.tui.filter import FilterError, compile_filter, field_help, tokenize
from dicomtui.tui.index import PacketIndex


def shown(analysis, text):
    index = PacketIndex(analysis)
    display_filter = compile_filter(text)
    return [pdu.index + 1 for pdu in analysis.pdus if display_filter.matches(index, pdu)]


def test_pdu_type_and_base_names(analyze_fixture):
    analysis = analyze_fixture("echo_dcmtk.pcap")
    assert shown(analysis, "type == P-DATA-TF") == [3, 4, 5, 6]
    assert shown(analysis, "type == P-DATA") == [3, 4, 5, 6]
    assert shown(analysis, "type == 1") == [1]
    assert shown(analysis, "type == A-ASSOCIATE") == [1, 2]
    assert shown(analysis, "not type == P-DATA") == [1, 2, 7, 8]


def test_command_status_and_message_fields(analyze_fixture):
    analysis = analyze_fixture("echo_dcmtk.pcap")
    assert shown(analysis, "command == C-ECHO-RSP and status == 0") == [4, 6]
    assert shown(analysis, "command == c-echo") == [3, 4, 5, 6]
    assert shown(analysis, 'sop_class contains "verification" && msgid == 2') == [5, 6]
    assert shown(analysis, "status.success") == [4, 6]


def test_status_not_equal_needs_a_status(analyze_fixture):
    analysis = analyze_fixture("reject_abort.pcap")
    assert shown(analysis, "status != 0") == [18, 21, 24]
    assert shown(analysis, "status.failure") == [18, 21]
    assert shown(analysis, "status.warning or kind == reject") == [2, 24]
    assert shown(analysis, "type == A-ABORT") == [13, 36]


def test_association_and_ae_fields(analyze_fixture):
    analysis = analyze_fixture("reject_abort.pcap")
    assert shown(analysis, 'calling_ae == "rejscu"') == [1, 2]
    assert shown(analysis, "assoc == 1 and (type == 1 or type == 2)") == [3, 4]
    assert shown(analysis, 'ae matches "^SLOW"') == list(range(9, 14))


def test_dataset_content_matches_the_pdu_completing_the_data_set(analyze_fixture):
    analysis = analyze_fixture("store_dcmtk.pcapng")
    assert shown(analysis, "tag(0010,0010)") == [12, 15, 18]
    assert shown(analysis, "Modality == MR") == [15]
    assert shown(analysis, 'tag(0010,0010) contains "compressedsamples"') == [12, 15]
    assert shown(analysis, '(0010,0020) == "id00001"') == [18]
    assert shown(analysis, 'PatientID == "nobody"') == []


def test_query_identifiers_are_searchable(analyze_fixture):
    analysis = analyze_fixture("qr_pynetdicom.pcap")
    assert 4 in shown(analysis, "QueryRetrieveLevel == STUDY")
    assert shown(analysis, "status == 0xFF00")


@pytest.mark.parametrize("text, position", [
    ("", 0),
    ("status ==", 9),
    ("(type == 1", 10),
    ("nonsense == 1", 0),
    ("tag(10,10)", 4),
    ('PatientID == "DOE', 13),
    ("type == 1 )", 10),
    ("status == 1 and", 15),
    ("status # 1", 7),
])
def test_invalid_filters_raise_with_a_position(text, position):
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert caught.value.position == position


def test_bad_regular_expression_is_a_filter_error():
    with pytest.raises(FilterError):
        compile_filter('ae matches "["')


def test_deep_nesting_is_refused_not_a_recursion_error():
    with pytest.raises(FilterError):
        compile_filter("(" * 500 + "pdu == 1" + ")" * 500)
    with pytest.raises(FilterError):
        compile_filter("not " * 500 + "pdu == 1")


def test_tokenizer_keeps_quoted_text_literally():
    tokens = tokenize('ae == "[bold]x\\"y"')
    assert tokens[2].kind == "string" and tokens[2].text == '[bold]x"y'


def test_every_field_is_documented():
    names = [name for name, _help in field_help()]
    for expected in ("type", "command", "status", "status.failure", "calling_ae", "assoc (association)",
                     "sop_class"):
        assert any(name.startswith(expected) for name in names), expected
