#!/usr/bin/env python3
"""A raw packet capture of DDS traffic and what it shows: is anything readable on the wire?

    sudo python3 scripts/rtps_capture.py IFACE OUT.pcap MAX_SECONDS    capture (prints CAPTURING, then
                                                                      writes until SIGINT/SIGTERM)

``analyse_pcap`` counts the RTPS messages of a capture, split by sender: participants with DDS
Security (their announcement carries an identity token) and the others, and where given texts
(a payload, a topic name) appear. Used by the DDS Security proofs (secure_dds.py, secure_ros2.py):
a raw socket instead of tcpdump (no dependency), pcap files for Wireshark. Standard library only.
"""
from __future__ import annotations

import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CAPTURING = 'CAPTURING'

_STOP = False


def capture(interface: str, out: str, max_seconds: float) -> int:
    """Writes every frame on INTERFACE to a pcap file until SIGINT/SIGTERM or MAX_SECONDS."""
    def stop(*_: Any) -> None:
        global _STOP
        _STOP = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    sock.bind((interface, 0))
    sock.settimeout(0.2)
    deadline = time.monotonic() + max_seconds
    with open(out, 'wb') as pcap:
        pcap.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # LINKTYPE_ETHERNET
        print(f'{CAPTURING} on {interface}', flush=True)
        while not _STOP and time.monotonic() < deadline:
            try:
                frame = sock.recv(65535)
            except TimeoutError:
                continue
            now = time.time()
            pcap.write(struct.pack('<IIII', int(now), int((now % 1) * 1e6), len(frame), len(frame)) + frame)
    print('CAPTURE DONE', flush=True)
    return 0


# RTPS submessage ids (DDSI-RTPS 2.x and DDS Security 1.1) and the built-in writers whose DATA a
# secured Cyclone participant sends in the clear: participant announcements and the authentication
# handshake (both unprotected by the DDS Security design), automatic-liveliness messages sent
# before a peer is authenticated (the participant's GUID prefix and a kind), and, when an endpoint
# is deleted, a dispose on the plain discovery writer that carries only the endpoint's GUID.
_DATA_IDS = {0x15, 0x16}          # DATA, DATA_FRAG
_SRTPS_PREFIX = 0x33
_HANDSHAKE = 'authentication_handshake'
_ENDPOINT_DISPOSE = 'endpoint_dispose'
_CLEAR_BUILTIN = {bytes.fromhex('000100c2'): 'participant_announcement',
                  bytes.fromhex('000201c3'): _HANDSHAKE,
                  bytes.fromhex('000200c2'): 'liveliness'}
_SEDP_WRITERS = {bytes.fromhex('000003c2'), bytes.fromhex('000004c2')}  # plain publication/subscription
_PID_SENTINEL, _PID_STATUS_INFO, _PID_ENDPOINT_GUID = 0x0001, 0x0071, 0x005A
_SECURE_MARK = b'DDS:Auth:PKI-DH'  # the identity token in a secured participant's announcement


def analyse_pcap(path: str, needles: Sequence[bytes]) -> dict[str, Any]:
    """Counts the RTPS traffic in a pcap file, split by sender: participants with DDS Security
    (those whose announcement carries an identity token) and the others."""
    messages = []  # (guid prefix, RTPS message)
    udp_packets = 0
    for payload in _udp_payloads(Path(path).read_bytes()):
        udp_packets += 1
        if payload[:4] == b'RTPS' and len(payload) >= 24:
            messages.append((payload[8:20], payload))
    secure_senders = {prefix for prefix, message in messages if _SECURE_MARK in message}
    stats: dict[str, Any] = {'udp_packets': udp_packets, 'rtps_messages': len(messages),
                             'secure_participants': len(secure_senders),
                             'other_participants': len({p for p, _ in messages} - secure_senders)}
    for group in ('from_secure', 'from_others'):
        stats[group] = {'messages': 0, 'bytes': 0, 'srtps_protected': 0, 'plain_data_by_writer': {},
                        'needles': {n.decode(): {'in_handshake': 0, 'elsewhere': 0} for n in needles}}
    for prefix, message in messages:
        group = stats['from_secure' if prefix in secure_senders else 'from_others']
        group['messages'] += 1
        group['bytes'] += len(message)
        submessages = _submessages(message)
        writers = [_writer_kind(flags, body) for kind, flags, body in submessages
                   if kind in _DATA_IDS and len(body) >= 12]
        for needle in needles:
            if needle in message:  # where: in a handshake message (the permissions document) or elsewhere
                where = 'in_handshake' if _HANDSHAKE in writers else 'elsewhere'
                group['needles'][needle.decode()][where] += 1
        if submessages and submessages[0][0] == _SRTPS_PREFIX:
            group['srtps_protected'] += 1
            continue
        for writer in writers:
            group['plain_data_by_writer'][writer] = group['plain_data_by_writer'].get(writer, 0) + 1
    return stats


def _udp_payloads(pcap: bytes) -> list[bytes]:
    payloads, offset = [], 24
    while offset + 16 <= len(pcap):
        captured = struct.unpack_from('<I', pcap, offset + 8)[0]
        frame = pcap[offset + 16: offset + 16 + captured]
        offset += 16 + captured
        if len(frame) >= 42 and frame[12:14] == b'\x08\x00' and frame[23] == 17:  # IPv4, UDP
            payloads.append(frame[14 + (frame[14] & 0x0F) * 4 + 8:])
    return payloads


def _submessages(message: bytes) -> list[tuple[int, int, bytes]]:
    """(submessage id, flags, body) for each submessage after the 20-byte RTPS header."""
    found, position = [], 20
    while position + 4 <= len(message):
        kind, flags = message[position], message[position + 1]
        length = struct.unpack_from('<H' if flags & 1 else '>H', message, position + 2)[0]
        end = len(message) if length == 0 else position + 4 + length  # 0: to the end of the message
        found.append((kind, flags, message[position + 4:end]))
        position = end
    return found


def _writer_kind(flags: int, body: bytes) -> str:
    """What a plain DATA(_FRAG) submessage is, by its writer (and, for discovery, its content)."""
    writer = body[8:12]
    if writer in _CLEAR_BUILTIN:
        return _CLEAR_BUILTIN[writer]
    if writer in _SEDP_WRITERS and _is_guid_only_dispose(flags, body):
        return _ENDPOINT_DISPOSE
    return 'other:' + writer.hex()


def _parameters(data: bytes, offset: int, little: bool) -> tuple[dict[int, bytes], int]:
    """A parameter list from OFFSET: ({pid: value}, offset after the sentinel); -1 if malformed."""
    found: dict[Any, Any] = {}
    while offset + 4 <= len(data):
        pid, length = struct.unpack_from('<HH' if little else '>HH', data, offset)
        if pid == _PID_SENTINEL:
            return found, offset + 4
        found[pid & 0x3FFF] = data[offset + 4: offset + 4 + length]
        offset += 4 + length
    return found, -1


def _is_guid_only_dispose(flags: int, body: bytes) -> bool:
    """A DATA with status info 'disposed/unregistered' whose payload is only an endpoint GUID."""
    little = bool(flags & 0x01)
    if not flags & 0x02:  # no inline QoS, so no status info
        return False
    inline_offset = 4 + struct.unpack_from('<H' if little else '>H', body, 2)[0]
    inline, offset = _parameters(body, inline_offset, little)
    status = inline.get(_PID_STATUS_INFO, b'')
    if offset < 0 or len(status) != 4 or not status[3] & 0x03:
        return False
    payload = body[offset:]
    if len(payload) < 4:
        return True  # no serialized data at all
    pl_little = payload[1] in (0x01, 0x03)  # CDR_LE / PL_CDR_LE encapsulation
    fields, end = _parameters(payload, 4, pl_little)
    return end > 0 and set(fields) <= {_PID_ENDPOINT_GUID}


def seen_count(counts: dict) -> int:
    """How many messages held a text: in the handshake plus elsewhere."""
    return counts['in_handshake'] + counts['elsewhere']


def plain_capture_shows_text(capture: dict) -> bool:
    """The control: without security the capture sees every text looked for (payload, topic name)."""
    return all(seen_count(v) > 0 for v in capture['from_others']['needles'].values())


def secure_capture_is_clean(capture: dict, payload: str, topic: str) -> bool:
    """At least two secured participants; they never send the PAYLOAD text in the clear, the TOPIC
    name only inside the permissions document of the handshake, no plain DATA but from the built-in
    writers (_CLEAR_BUILTIN, endpoint disposes), and SRTPS-protected messages flow."""
    clear = capture['from_secure']
    return (capture['secure_participants'] >= 2
            and seen_count(clear['needles'][payload]) == 0
            and clear['needles'][topic]['elsewhere'] == 0
            and set(clear['plain_data_by_writer']) <= set(_CLEAR_BUILTIN.values()) | {_ENDPOINT_DISPOSE}
            and clear['srtps_protected'] > 0)


def start_capture(bed: Any, host: str, path: str, timeout: float) -> Any:
    """A capture of HOST's eth0 in a dcdrl_ros.netns.Testbed, running once this returns (stop() it)."""
    child = bed.run(host, [sys.executable, str(Path(__file__).resolve()), 'eth0', path, str(timeout * 3)])
    child.wait_for_line(CAPTURING, timeout)
    return child


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit(__doc__.split('\n\n')[1])
    sys.exit(capture(sys.argv[1], sys.argv[2], float(sys.argv[3])))
