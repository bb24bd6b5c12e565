"""Generate a large, realistic, deterministic pcap of DICOM C-STOREs.

    python bench/make_capture.py OUT.pcap --size-mb 200 [--object-kb 512] [--seed N]
                                 [--associations N] [--max-pdu 16384] [--mss 1448] [--messy 0.03]

What it writes: Ethernet / IPv4 / TCP frames (correct IP and TCP checksums) of
one or several TCP connections from an SCU to an SCP on port 11112.  Each
connection has a SYN / SYN-ACK / ACK handshake, an A-ASSOCIATE-RQ/AC, many
C-STORE-RQ (command set in Implicit VR Little Endian built with pydicom; a
synthetic CT image data set of about ``--object-kb`` KB in Explicit VR Little
Endian) each answered by a C-STORE-RSP Success, then A-RELEASE-RQ/RP and FIN
from both sides.  P-DATA-TF PDUs carry one PDV each and are at most
``--max-pdu`` bytes; the byte stream is cut into ``--mss``-byte TCP segments
and the receiver ACKs every second segment, as a real stack would.  With
``--messy RATE`` the segments go through a network that reorders and
retransmits (some repacketized, overlapping) about RATE of them each; the
receiver's ACKs then only cover what it holds in order, so nothing is lost.

Every object has its own SOP Instance UID; the output depends only on the
arguments (fixed timestamps, seeded pixel data), so two runs give the same file.
The generator writes pcap records directly and reuses the pixel bytes, so a
200 MB capture takes a few seconds.
"""

from __future__ import annotations

import argparse
import array
import io
import random
import struct
import sys
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
# A root for the synthetic UIDs of the benchmark (UUID-derived, PS3.5 B.2).
BENCH_UID_ROOT = "2.25.266992527129183994462024539468318572522.9"
IMPLEMENTATION_CLASS_UID = "2.25.266992527129183994462024539468318572522.1.9"

SCU_MAC, SCP_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SCU_IP, SCP_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SCP_PORT = 11112

TCP_FIN, TCP_SYN, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x08, 0x10


# -- DICOM upper layer ---------------------------------------------------------------------


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _uid(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw  # UIDs in items are not padded (PS3.8 9.3.2.1)


def _user_information(max_pdu: int) -> bytes:
    return _item(0x50, _item(0x51, struct.pack(">I", max_pdu))
                 + _item(0x52, _uid(IMPLEMENTATION_CLASS_UID))
                 + _item(0x55, b"DICOMTUI_BENCH"))


def _associate_header(pdu_type: int, called: str, calling: str, items: bytes) -> bytes:
    body = (struct.pack(">HH", 1, 0) + called.encode().ljust(16) + calling.encode().ljust(16)
            + bytes(32) + items)
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def associate_rq(called: str, calling: str, max_pdu: int) -> bytes:
    items = _item(0x10, _uid(APPLICATION_CONTEXT))
    for context_id, abstract in ((1, CT_IMAGE_STORAGE), (3, VERIFICATION)):
        items += _item(0x20, struct.pack(">BBBB", context_id, 0, 0, 0)
                       + _item(0x30, _uid(abstract))
                       + _item(0x40, _uid(ExplicitVRLittleEndian))
                       + _item(0x40, _uid(ImplicitVRLittleEndian)))
    return _associate_header(0x01, called, calling, items + _user_information(max_pdu))


def associate_ac(called: str, calling: str, max_pdu: int) -> bytes:
    items = _item(0x10, _uid(APPLICATION_CONTEXT))
    for context_id, syntax in ((1, ExplicitVRLittleEndian), (3, ImplicitVRLittleEndian)):
        items += _item(0x21, struct.pack(">BBBB", context_id, 0, 0, 0) + _item(0x40, _uid(syntax)))
    return _associate_header(0x02, called, calling, items + _user_information(max_pdu))


RELEASE_RQ = struct.pack(">BBIxxxx", 0x05, 0, 4)
RELEASE_RP = struct.pack(">BBIxxxx", 0x06, 0, 4)


def p_data(context_id: int, command: bool, data: bytes, max_pdu: int) -> list[bytes]:
    """P-DATA-TF PDUs of at most ``max_pdu`` bytes (PDU body), one PDV each."""
    room = max_pdu - 6  # PDV item: 4-byte length, context id, message control header
    pdus = []
    for start in range(0, max(len(data), 1), room):
        fragment = data[start:start + room]
        last = start + room >= len(data)
        control = (0x01 if command else 0x00) | (0x02 if last else 0x00)
        pdv = struct.pack(">IBB", len(fragment) + 2, context_id, control) + fragment
        pdus.append(struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv)
    return pdus


def command_set(elements: Dataset) -> bytes:
    """A command set in Implicit VR Little Endian with a correct CommandGroupLength."""
    buffer = io.BytesIO()
    write_dataset(_filebuffer(buffer, implicit=True), elements)
    body = buffer.getvalue()
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def _filebuffer(buffer, implicit: bool):
    from pydicom.filebase import DicomFileLike

    fp = DicomFileLike(buffer)
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    return fp


def c_store_rq(message_id: int, sop_instance: str) -> bytes:
    ds = Dataset()
    ds.AffectedSOPClassUID = CT_IMAGE_STORAGE
    ds.CommandField = 0x0001
    ds.MessageID = message_id
    ds.Priority = 0
    ds.CommandDataSetType = 0x0000
    ds.AffectedSOPInstanceUID = sop_instance
    return command_set(ds)


def c_store_rsp(message_id: int, sop_instance: str) -> bytes:
    ds = Dataset()
    ds.AffectedSOPClassUID = CT_IMAGE_STORAGE
    ds.CommandField = 0x8001
    ds.MessageIDBeingRespondedTo = message_id
    ds.CommandDataSetType = 0x0101
    ds.Status = 0x0000
    ds.AffectedSOPInstanceUID = sop_instance
    return command_set(ds)


class CtImageFactory:
    """Synthetic CT data sets: the header varies per object, the pixel bytes are shared."""

    def __init__(self, object_kb: int, seed: int) -> None:
        columns = 512 if object_kb >= 64 else 128
        rows = max(1, object_kb * 1024 // (columns * 2))
        self.rows, self.columns = rows, columns
        self.pixels = random.Random(seed).randbytes(rows * columns * 2)
        self.study = f"{BENCH_UID_ROOT}.1.{seed}"
        self.series = f"{BENCH_UID_ROOT}.2.{seed}"

    def dataset(self, number: int, sop_instance: str) -> bytes:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_instance
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.AccessionNumber = "BENCH0001"
        ds.Modality = "CT"
        ds.Manufacturer = "dicomtui benchmark"
        ds.PatientName = "Bench^Synthetic"
        ds.PatientID = "BENCH-0001"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.SliceThickness = "1.0"
        ds.KVP = "120"
        ds.StudyInstanceUID = self.study
        ds.SeriesInstanceUID = self.series
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [0, 0, number]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = self.study + ".0"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = self.rows
        ds.Columns = self.columns
        ds.PixelSpacing = [0.5, 0.5]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        buffer = io.BytesIO()
        write_dataset(_filebuffer(buffer, implicit=False), ds)
        # Pixel Data (7FE0,0010) OW, written by hand so the shared bytes are not copied twice.
        header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, len(self.pixels))
        return buffer.getvalue() + header + self.pixels


class TemplateFactory:
    """Data sets copied from a real DICOM file (all its elements), each with its own SOP Instance UID."""

    def __init__(self, path: str) -> None:
        import pydicom

        self.template = pydicom.dcmread(path)
        self.template.file_meta = None
        self.pixels = b"x" * 1024  # only used for the size estimate

    def dataset(self, number: int, sop_instance: str) -> bytes:
        ds = self.template
        ds.SOPInstanceUID = sop_instance
        ds.InstanceNumber = number
        buffer = io.BytesIO()
        write_dataset(_filebuffer(buffer, implicit=False), ds)
        return buffer.getvalue()


# -- TCP / IP / Ethernet / pcap ------------------------------------------------------------


def _checksum(data: bytes) -> bytes:
    """Internet checksum, computed and returned in native byte order (RFC 1071 1.2 (B))."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(array.array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("=H", ~total & 0xFFFF)


class PcapWriter:
    """Writes Ethernet/IPv4/TCP records of one capture, with microsecond timestamps."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.bytes = 0
        self.frames = 0
        self.time_us = 1_704_110_400 * 1_000_000  # 2024-01-01 12:00:00 UTC
        self.ip_id = 0
        self._write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def _write(self, data: bytes) -> None:
        self.stream.write(data)
        self.bytes += len(data)

    def tick(self, microseconds: int) -> None:
        self.time_us += microseconds

    def segment(self, source, target, seq: int, ack: int, flags: int, payload: bytes = b"") -> None:
        (src_mac, src_ip, src_port), (dst_mac, dst_ip, dst_port) = source, target
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        tcp = struct.pack(">HHIIBBHHH", src_port, dst_port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 65535, 0, 0)
        pseudo = src_ip + dst_ip + struct.pack(">BBH", 0, 6, len(tcp) + len(payload))
        tcp = tcp[:16] + _checksum(pseudo + tcp + payload) + tcp[18:]
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), self.ip_id,
                         0x4000, 64, 6, 0, src_ip, dst_ip)
        ip = ip[:10] + _checksum(ip) + ip[12:]
        frame_length = 14 + len(ip) + len(tcp) + len(payload)
        seconds, micros = divmod(self.time_us, 1_000_000)
        self._write(struct.pack("<IIII", seconds, micros, frame_length, frame_length)
                    + dst_mac + src_mac + b"\x08\x00" + ip + tcp)
        self._write(payload)
        self.frames += 1


class MessyNetwork:
    """Decides the order in which a run of segments reaches the receiver (seeded, deterministic).

    Of the segments, a fraction ``rate`` is delayed behind 1-8 later ones
    (reordering), and as many again are sent a second time 1-20 segments later
    (retransmission); a third of the retransmissions carry the segment merged
    with the next one (a repacketized retransmission, overlapping bytes already
    received).
    """

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = random.Random(seed ^ 0x5EED)

    def arrivals(self, segments: list[tuple[int, bytes]], mss: int) -> list[tuple[int, bytes]]:
        rng = self.rng
        keyed = []  # (position, tie-break, start, payload)
        for index, (start, payload) in enumerate(segments):
            position = float(index)
            if rng.random() < self.rate:
                position += rng.randint(1, 8) + 0.5
            keyed.append((position, 0, start, payload))
            if rng.random() < self.rate:
                later = index + rng.randint(1, 20) + 0.25
                if rng.random() < 1 / 3 and index + 1 < len(segments):
                    payload = payload + segments[index + 1][1]
                keyed.append((later, 1, start, payload))
        keyed.sort(key=lambda item: (item[0], item[1]))
        return [(start, payload) for _position, _tie, start, payload in keyed]


class Connection:
    """One TCP connection between the SCU and the SCP, with sequence numbers and ACKs."""

    def __init__(self, writer: PcapWriter, client_port: int, mss: int, seed: int,
                 network: MessyNetwork | None = None) -> None:
        self.writer = writer
        self.network = network
        self.mss = mss
        self.client = (SCU_MAC, SCU_IP, client_port)
        self.server = (SCP_MAC, SCP_IP, SCP_PORT)
        rng = random.Random(seed * 65536 + client_port)
        self.seq = {"client": rng.getrandbits(32), "server": rng.getrandbits(32)}
        self.unacked = {"client": 0, "server": 0}

    def _ends(self, side: str):
        return (self.client, self.server) if side == "client" else (self.server, self.client)

    def _other(self, side: str) -> str:
        return "server" if side == "client" else "client"

    def open(self) -> None:
        w = self.writer
        w.segment(self.client, self.server, self.seq["client"], 0, TCP_SYN)
        self.seq["client"] += 1
        w.tick(80)
        w.segment(self.server, self.client, self.seq["server"], self.seq["client"], TCP_SYN | TCP_ACK)
        self.seq["server"] += 1
        w.tick(20)
        w.segment(self.client, self.server, self.seq["client"], self.seq["server"], TCP_ACK)
        w.tick(50)

    def send(self, side: str, data: bytes) -> None:
        """``data`` from one side in MSS-sized segments; the peer ACKs every second one."""
        if self.network is not None:
            self._send_messy(side, data)
            return
        source, target = self._ends(side)
        other = self._other(side)
        view = memoryview(data)
        for start in range(0, len(data), self.mss):
            payload = bytes(view[start:start + self.mss])
            last = start + self.mss >= len(data)
            self.writer.segment(source, target, self.seq[side], self.seq[other],
                                TCP_ACK | (TCP_PSH if last else 0), payload)
            self.seq[side] += len(payload)
            self.unacked[side] += 1
            self.writer.tick(12)  # about 1 Gbit/s
            if self.unacked[side] >= 2 or last:
                self.writer.segment(target, source, self.seq[other], self.seq[side], TCP_ACK)
                self.unacked[side] = 0
                self.writer.tick(3)

    def _send_messy(self, side: str, data: bytes) -> None:
        """``send`` through a network that reorders, duplicates and repacketizes segments.

        The capture point is the receiver: segments arrive in the order the
        network chose, and the receiver acknowledges only what it holds in order
        (a duplicate ACK for data past a hole, as a real stack does), so every
        byte arrives eventually and the capture has no loss, only disorder.
        """
        source, target = self._ends(side)
        other = self._other(side)
        base = self.seq[side]
        segments = [(start, data[start:start + self.mss]) for start in range(0, len(data), self.mss)]
        arrivals = self.network.arrivals(segments, self.mss)
        received: list[tuple[int, int]] = []  # (start, end) intervals the receiver holds
        contiguous = 0
        for number, (start, payload) in enumerate(arrivals):
            last = start + len(payload) >= len(data)
            self.writer.segment(source, target, base + start, self.seq[other],
                                TCP_ACK | (TCP_PSH if last else 0), payload)
            self.writer.tick(12)
            received.append((start, start + len(payload)))
            if start > contiguous:
                out_of_order = True
            else:
                out_of_order = False
                received.sort()
                for begin, end in received:
                    if begin > contiguous:
                        break
                    contiguous = max(contiguous, end)
                received = [(begin, end) for begin, end in received if end > contiguous]
            if out_of_order or number % 2 or number == len(arrivals) - 1:
                self.writer.segment(target, source, self.seq[other], base + contiguous, TCP_ACK)
                self.writer.tick(3)
        self.seq[side] = base + len(data)

    def close(self) -> None:
        w = self.writer
        w.segment(self.client, self.server, self.seq["client"], self.seq["server"], TCP_FIN | TCP_ACK)
        self.seq["client"] += 1
        w.tick(40)
        w.segment(self.server, self.client, self.seq["server"], self.seq["client"], TCP_FIN | TCP_ACK)
        self.seq["server"] += 1
        w.tick(20)
        w.segment(self.client, self.server, self.seq["client"], self.seq["server"], TCP_ACK)
        w.tick(500)


def generate(out, size_mb: float, object_kb: int, seed: int, associations: int,
             max_pdu: int, mss: int, template: str | None = None, messy: float = 0.0) -> tuple[int, int, int]:
    """Write the capture to the binary stream ``out``; returns (bytes, frames, objects).

    ``messy`` > 0 sends every stream through a ``MessyNetwork`` with that rate.
    """
    network = MessyNetwork(messy, seed) if messy > 0 else None
    factory = TemplateFactory(template) if template else CtImageFactory(object_kb, seed)
    target = int(size_mb * 1024 * 1024)
    writer = PcapWriter(out)
    # About 7 % of a capture is headers and ACKs; the loop below makes sure of the size.
    estimate = max(1, -(-target // int(len(factory.pixels) * 1.05)))
    per_association = max(1, -(-estimate // associations))
    objects = 0
    association = 0
    while True:
        association += 1
        connection = Connection(writer, 49152 + association, mss, seed, network)
        connection.open()
        calling, called = "BENCH_SCU", "BENCH_SCP"
        connection.send("client", associate_rq(called, calling, max_pdu))
        writer.tick(200)
        connection.send("server", associate_ac(called, calling, max_pdu))
        writer.tick(100)
        for message_id in range(1, per_association + 1):
            if writer.bytes >= target:
                break
            objects += 1
            sop_instance = f"{BENCH_UID_ROOT}.3.{seed}.{objects}"
            stream = b"".join(p_data(1, True, c_store_rq(message_id, sop_instance), max_pdu)
                              + p_data(1, False, factory.dataset(objects, sop_instance), max_pdu))
            connection.send("client", stream)
            writer.tick(300)
            connection.send("server", b"".join(p_data(1, True, c_store_rsp(message_id, sop_instance),
                                                      max_pdu)))
            writer.tick(100)
        connection.send("client", RELEASE_RQ)
        writer.tick(100)
        connection.send("server", RELEASE_RP)
        connection.close()
        if writer.bytes >= target:
            break
    return writer.bytes, writer.frames, objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="pcap file to write")
    parser.add_argument("--size-mb", type=float, default=200, help="capture size to reach (MiB)")
    parser.add_argument("--object-kb", type=int, default=512, help="pixel data per object (KiB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--associations", type=int, default=1,
                        help="spread the objects over this many associations (one TCP connection each)")
    parser.add_argument("--max-pdu", type=int, default=16384, help="largest P-DATA-TF PDU body")
    parser.add_argument("--mss", type=int, default=1448, help="TCP payload per segment")
    parser.add_argument("--template", help="copy every element of this DICOM file into each object "
                                           "(instead of the synthetic CT header)")
    parser.add_argument("--messy", type=float, default=0.0, metavar="RATE",
                        help="reorder and retransmit about this fraction of segments each (e.g. 0.03)")
    args = parser.parse_args(argv)
    if args.max_pdu < 16 or args.mss < 1 or args.object_kb < 1 or args.associations < 1 or \
            not 0 <= args.messy < 1:
        parser.error("sizes must be positive (max PDU at least 16)")
    with open(args.out, "wb") as out:
        size, frames, objects = generate(out, args.size_mb, args.object_kb, args.seed,
                                         args.associations, args.max_pdu, args.mss, args.template, args.messy)
    print(f"{args.out}: {size} bytes, {frames} frames, {objects} C-STORE objects", file=sys.stderr)
    return 0


def iter_pdus(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, body) of each PDU in a byte stream; a helper for tests of this generator."""
    offset = 0
    while offset + 6 <= len(data):
        pdu_type, length = data[offset], struct.unpack_from(">I", data, offset + 2)[0]
        yield pdu_type, data[offset + 6:offset + 6 + length]
        offset += 6 + length


if __name__ == "__main__":
    sys.exit(main())
