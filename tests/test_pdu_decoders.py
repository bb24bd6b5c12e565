"""PDU and item decoders: pynetdicom encodes, we decode; arbitrary bytes never crash."""

from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    A_P_ABORT,
    MaximumLengthNotification,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
    SOPClassCommonExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

from dicomtui.core.base.errors import DecodeError
from dicomtui.core.protocol import pdu as decoders
from dicomtui.core.protocol.framing import FramedPdu, PduStreamParser

ae_titles = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=16)
uids = st.lists(st.integers(min_value=1, max_value=99999), min_size=2, max_size=8).map(
    lambda parts: "1.2." + ".".join(str(p) for p in parts))
TRANSFER_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50"]


def _primitive(calling, called, contexts, max_length, version, extras):
    primitive = A_ASSOCIATE()
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.presentation_context_definition_list = contexts
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = max_length
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = "1.2.3.4"
    items = [maximum, implementation]
    if version:
        name = ImplementationVersionNameNotification()
        name.implementation_version_name = version
        items.append(name)
    primitive.user_information = items + extras
    return primitive


@st.composite
def associate_requests(draw):
    contexts = []
    for number, abstract in enumerate(draw(st.lists(uids, min_size=1, max_size=6))):
        context = PresentationContext()
        context.context_id = 2 * number + 1
        context.abstract_syntax = abstract
        context.transfer_syntax = draw(st.lists(st.sampled_from(TRANSFER_SYNTAXES), min_size=1, max_size=3,
                                                unique=True))
        contexts.append(context)
    extras = []
    if draw(st.booleans()):
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = draw(st.integers(0, 65535))
        window.maximum_number_operations_performed = draw(st.integers(0, 65535))
        extras.append(window)
    if draw(st.booleans()):
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = contexts[0].abstract_syntax
        role.scu_role = draw(st.booleans())
        role.scp_role = True
        extras.append(role)
    if draw(st.booleans()):
        extended = SOPClassExtendedNegotiation()
        extended.sop_class_uid = "1.2.840.10008.5.1.4.1.2.2.1"
        extended.service_class_application_information = bytes(draw(st.lists(st.integers(0, 1), min_size=1,
                                                                              max_size=5)))
        extras.append(extended)
    if draw(st.booleans()):
        common = SOPClassCommonExtendedNegotiation()
        common.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2"
        common.service_class_uid = "1.2.840.10008.4.2"
        common.related_general_sop_class_identification = draw(st.lists(uids, max_size=3))
        extras.append(common)
    identity = None
    if draw(st.booleans()):
        identity = UserIdentityNegotiation()
        identity.user_identity_type = 2
        identity.positive_response_requested = draw(st.booleans())
        identity.primary_field = draw(st.binary(min_size=1, max_size=20).filter(lambda b: b"\0" not in b))
        identity.secondary_field = b"S3CRET" + draw(st.binary(max_size=20))
        extras.append(identity)
    calling, called = draw(ae_titles), draw(ae_titles)
    max_length = draw(st.integers(0, 2**32 - 1))
    version = draw(st.one_of(st.just(""), ae_titles))
    return _primitive(calling, called, contexts, max_length, version, extras), identity


@settings(max_examples=150, deadline=None)
@given(associate_requests())
def test_associate_rq_roundtrip_through_pynetdicom(example):
    primitive, identity = example
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    encoded = pdu.encode()
    decoded = decoders.decode_associate_rq(encoded[6:])
    assert decoded.calling_ae == primitive.calling_ae_title.strip()
    assert decoded.called_ae == primitive.called_ae_title.strip()
    assert decoded.application_context == "1.2.840.10008.3.1.1.1"
    assert [(c.context_id, c.abstract_syntax, c.transfer_syntaxes) for c in decoded.contexts] == [
        (c.context_id, c.abstract_syntax, list(c.transfer_syntax))
        for c in primitive.presentation_context_definition_list]
    items = {type(item).__name__: item for item in primitive.user_information}
    assert decoded.user.max_length == items["MaximumLengthNotification"].maximum_length_received
    assert decoded.user.implementation_class_uid == "1.2.3.4"
    if "AsynchronousOperationsWindowNegotiation" in items:
        window = items["AsynchronousOperationsWindowNegotiation"]
        assert decoded.user.async_window == (window.maximum_number_operations_invoked,
                                             window.maximum_number_operations_performed)
    if "SCP_SCU_RoleSelectionNegotiation" in items:
        role = items["SCP_SCU_RoleSelectionNegotiation"]
        assert decoded.user.roles == [(role.sop_class_uid, int(role.scu_role), int(role.scp_role))]
    if "SOPClassExtendedNegotiation" in items:
        extended = items["SOPClassExtendedNegotiation"]
        assert decoded.user.extended_negotiation == [
            (extended.sop_class_uid, extended.service_class_application_information)]
    if "SOPClassCommonExtendedNegotiation" in items:
        common = items["SOPClassCommonExtendedNegotiation"]
        assert decoded.user.common_extended_negotiation == [
            (common.sop_class_uid, common.service_class_uid, list(common.related_general_sop_class_identification))]
    if identity is not None:
        assert decoded.user.user_identity.primary == identity.primary_field
        assert decoded.user.user_identity.secondary_length == len(identity.secondary_field)
        # The passcode is never shown.
        text = decoded.tree.render_text()
        assert "********" in text
        assert "S3CRET" not in text


@settings(max_examples=100, deadline=None)
@given(associate_requests(), st.lists(st.integers(0, 4), min_size=1, max_size=6))
def test_associate_ac_results_roundtrip(example, results):
    primitive, _identity = example
    for number, context in enumerate(primitive.presentation_context_definition_list):
        context.result = results[number % len(results)]
        context.transfer_syntax = context.transfer_syntax[:1]
    primitive.result = 0
    primitive.presentation_context_definition_results_list = primitive.presentation_context_definition_list
    primitive.user_information = [item for item in primitive.user_information if type(item).__name__ in (
        "MaximumLengthNotification", "ImplementationClassUIDNotification", "ImplementationVersionNameNotification")]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(primitive)
    decoded = decoders.decode_associate_ac(pdu.encode()[6:])
    assert [(c.context_id, c.result, c.transfer_syntaxes) for c in decoded.contexts] == [
        (c.context_id, c.result, list(c.transfer_syntax)) for c in primitive.presentation_context_definition_list]


VALID_REJECTS = [(1, 1), (1, 2), (1, 3), (1, 7), (2, 1), (2, 2), (3, 1), (3, 2)]


@given(st.sampled_from([1, 2]), st.sampled_from(VALID_REJECTS))
def test_associate_rj_roundtrip(result, source_reason):
    source, reason = source_reason
    primitive = A_ASSOCIATE()
    primitive.result = result
    primitive.result_source = source
    primitive.diagnostic = reason
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(primitive)
    decoded = decoders.decode_associate_rj(pdu.encode()[6:])
    assert (decoded.result, decoded.source, decoded.reason) == (result, source, reason)
    assert decoded.text


@given(st.sampled_from([0, 2]), st.sampled_from([0, 1, 2, 4, 5, 6]))
def test_abort_roundtrip(source, reason):
    primitive = A_P_ABORT()
    primitive.provider_reason = reason
    pdu = A_ABORT_RQ()
    pdu.from_primitive(primitive)
    encoded = bytearray(pdu.encode())
    encoded[8] = source
    decoded = decoders.decode_abort(bytes(encoded[6:]))
    assert decoded.source == source and decoded.reason == reason


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 127).map(lambda n: 2 * n + 1), st.integers(0, 3),
                          st.binary(max_size=300)), min_size=1, max_size=10))
def test_pdata_pdvs_roundtrip_and_stream_framing(pdvs):
    pdu = P_DATA_TF()
    pdu.presentation_data_value_items = []
    from pynetdicom.pdu_items import PresentationDataValueItem

    for context_id, flags, data in pdvs:
        item = PresentationDataValueItem()
        item.presentation_context_id = context_id
        item.presentation_data_value = bytes([flags]) + data
        pdu.presentation_data_value_items.append(item)
    encoded = pdu.encode()
    decoded = decoders.decode_pdata(encoded[6:])
    assert [(c, f, length) for _o, length, c, f in decoded.pdvs] == [(c, f, len(d)) for c, f, d in pdvs]
    # The streaming framer finds the same PDVs however the bytes are split.
    for chunk in (1, 7, 1000):
        parser = PduStreamParser()
        events = []
        for start in range(0, len(encoded), chunk):
            events += parser.feed(start, encoded[start : start + chunk])
        events += parser.finish()
        framed = [e for e in events if isinstance(e, FramedPdu)]
        assert len(framed) == 1 and framed[0].complete
        assert [(p.context_id, p.flags, p.length) for p in framed[0].pdvs] == [(c, f, len(d)) for c, f, d in pdvs]
        commands = [encoded[p.stream_offset : p.stream_offset + p.length] for p in framed[0].pdvs if p.is_command]
        assert list(framed[0].commands.values()) == commands


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 7), st.binary(max_size=400))
def test_arbitrary_bodies_only_raise_decode_error(pdu_type, body):
    decoder = {1: decoders.decode_associate_rq, 2: decoders.decode_associate_ac, 3: decoders.decode_associate_rj,
               4: decoders.decode_pdata, 5: lambda b: decoders.decode_release(b, 5),
               6: lambda b: decoders.decode_release(b, 6), 7: decoders.decode_abort}[pdu_type]
    try:
        decoder(body)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_stream_parser_survives_arbitrary_bytes(data, chunk):
    parser = PduStreamParser(start_in_resync=bool(chunk % 2))
    consumed = 0
    for start in range(0, len(data), chunk):
        parser.feed(start, data[start : start + chunk])
        consumed = start + len(data[start : start + chunk])
    parser.finish()
    assert parser.position == consumed
