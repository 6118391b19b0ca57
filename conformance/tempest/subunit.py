"""A small reader of subunit v2 streams (what ``stestr last --subunit`` prints).

Dependency-free, so the results of a Tempest run can be read from any
environment (the suite's, a benchmark's), not only from Tempest's venv.
The packet layout is python-subunit's ``subunit/v2.py``: a signature byte,
16-bit flags, a varint length of the whole packet, the optional fields in
flag order, and a CRC32.
"""

from __future__ import annotations

import dataclasses
import datetime
import struct
import zlib
from collections.abc import Iterator

SIGNATURE = 0xB3
FLAG_TEST_ID = 0x0800
FLAG_ROUTE_CODE = 0x0400
FLAG_TIMESTAMP = 0x0200
FLAG_TAGS = 0x0080
FLAG_FILE_CONTENT = 0x0040
FLAG_MIME_TYPE = 0x0020
STATUSES = (None, "exists", "inprogress", "success", "uxsuccess", "skip", "fail", "xfail")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class SubunitError(ValueError):
    """The stream is not valid subunit v2."""


@dataclasses.dataclass
class Packet:
    """One subunit v2 event."""

    status: str | None
    test_id: str | None = None
    timestamp: datetime.datetime | None = None
    file_name: str | None = None
    file_bytes: bytes = b""


class _Reader:
    """Reads the fields of one packet body from ``pos`` on."""

    def __init__(self, body: bytes, pos: int):
        self.body, self.pos = body, pos

    def varint(self) -> int:
        first = self.body[self.pos]
        extra = first >> 6
        value = first & 0x3F
        for byte in self.body[self.pos + 1:self.pos + 1 + extra]:
            value = (value << 8) | byte
        self.pos += 1 + extra
        return value

    def raw(self, size: int) -> bytes:
        data = self.body[self.pos:self.pos + size]
        if len(data) != size:
            raise SubunitError("field extends past the end of its packet")
        self.pos += size
        return data

    def text(self) -> str:
        return self.raw(self.varint()).decode("utf-8", errors="replace")


def _decode(flags: int, reader: _Reader) -> Packet:
    """The fields of one packet body, in the order the flags announce them."""
    packet = Packet(status=STATUSES[flags & 0x0007])
    if flags & FLAG_TIMESTAMP:
        seconds = struct.unpack(">I", reader.raw(4))[0]
        nanos = reader.varint()
        packet.timestamp = EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanos / 1000)
    if flags & FLAG_TEST_ID:
        packet.test_id = reader.text()
    if flags & FLAG_TAGS:
        for _ in range(reader.varint()):
            reader.text()
    if flags & FLAG_MIME_TYPE:
        reader.text()
    if flags & FLAG_FILE_CONTENT:
        packet.file_name = reader.text()
        packet.file_bytes = reader.raw(reader.varint())
    return packet


def packets(data: bytes) -> Iterator[Packet]:
    """Every packet of a subunit v2 stream; bytes between packets are skipped."""
    pos = 0
    while pos < len(data):
        if data[pos] != SIGNATURE:
            pos += 1  # non-subunit output interleaved with the stream
            continue
        if pos + 6 > len(data):
            raise SubunitError("truncated packet header at the end of the stream")
        flags = struct.unpack(">H", data[pos + 1:pos + 3])[0]
        length = _Reader(data, pos + 3).varint()
        packet = data[pos:pos + length]
        if len(packet) != length or length < 8:
            raise SubunitError(f"truncated packet at byte {pos}")
        if zlib.crc32(packet[:-4]) & 0xFFFFFFFF != struct.unpack(">I", packet[-4:])[0]:
            raise SubunitError(f"bad checksum in the packet at byte {pos}")
        header = 3 + (1 + (data[pos + 3] >> 6))
        yield _decode(flags, _Reader(packet[:-4], header))
        pos += length
