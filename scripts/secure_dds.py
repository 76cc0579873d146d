#!/usr/bin/env python3
"""Authenticated, encrypted DDS without ROS 2: Cyclone DDS Security between two network namespaces.

    sudo python3 scripts/secure_dds.py check [--python PY]     what is missing, else "ready"
    python3 scripts/secure_dds.py pki DIR [--identity NAME:pub=T,..:sub=T,.. ...]  test PKI + Cyclone XML
    python3 scripts/secure_dds.py enclave-xml KEYSTORE/enclaves/NAME   Cyclone XML for an SROS2 enclave
    sudo python3 scripts/secure_dds.py demo --python PY [--seconds 4]   the proof (last line: JSON)
    sudo python3 scripts/secure_dds.py latency [--seconds 5]   ddsperf ping/pong, plain vs secure

PY is a Python whose ``cyclonedds`` is 0.10.x built against Debian's libddsc 0.10.2
(docs/security.md says how to make one); the PyPI wheels have no DDS Security. The orchestrating
commands themselves need only the standard library, ``openssl``, ``ip``, ``tc`` and root.

``demo`` builds a throw-away PKI in a temporary directory (identity CA, permissions CA, one
certificate per participant, signed governance and permissions), two namespaces ``alice`` and
``bob`` joined by a switch (dcdrl_core.netns.Testbed, discovery through ROS_STATIC_PEERS as on
real machines), and runs DC-DRL's own talker (alice) and listener (bob) twice:

1. without security, with a raw packet capture on alice's interface: the payload text and the
   topic name must be visible (this proves that the capture can see them);
2. with security: the secured listener must hear the talker; three intruders in bob must hear
   nothing: one without security, one whose certificate comes from another CA, one with a valid
   certificate whose permissions do not allow reading the topic; the capture must not contain
   the payload text or the topic name, and the RTPS messages must be SRTPS-protected.

Everything it creates (keys, namespaces, processes) is deleted at the end, also after errors.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
NODE_PATHS = [str(ROOT / 'src' / 'dcdrl_core'), str(ROOT / 'src' / 'dcdrl_msgs')]
PLUGIN_NAMES = ('libdds_security_auth.so', 'libdds_security_ac.so', 'libdds_security_crypto.so')
# Debian installs the plugins in a private directory of libddsc0debian (not on the loader path).
PLUGIN_DIR_GLOB = '/usr/lib/*/libddsc0debian'
DOMAIN_ID = 0
CERT_DAYS = 2                     # test certificates only: short-lived on purpose
PAYLOAD_TEXT = b'Hello World'     # what the talker sends ('Hello World: N')
TOPIC_TEXT = b'rt/chatter'        # the DDS topic name of /chatter
HEARD = 'I heard: ['
SECURE_PYTHON_ENV = 'DCDRL_SECURE_PYTHON'
INTRUDERS = ('no_security', 'foreign_ca', 'not_permitted')


# ------------------------------------------------------------------------------- PKI
@dataclass
class Identity:
    """One participant: its certificate's subject and the topics its permissions allow."""
    name: str
    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    foreign_ca: bool = False      # signed by a CA the others do not trust (an intruder)
    partitions: list[str] = field(default_factory=list)  # none listed: only the default partition

    @property
    def subject(self) -> str:
        return f'CN={self.name},O=DC-DRL test'


def _openssl(args: Sequence[str], cwd: Path) -> None:
    result = subprocess.run(['openssl', *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _make_ca(directory: Path, stem: str, common_name: str) -> None:
    # EC P-256 as SROS2 uses; Cyclone's auth plugin accepts P-256 and RSA-2048.
    _openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
              '-keyout', f'{stem}.key', '-out', f'{stem}.pem', '-days', str(CERT_DAYS),
              '-subj', f'/CN={common_name}/O=DC-DRL test'], directory)


def _make_certificate(directory: Path, ca_stem: str, identity: Identity) -> None:
    name = identity.name
    subject = '/' + identity.subject.replace(',', '/')  # 'CN=a,O=b' -> '/CN=a/O=b'
    _openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
              '-keyout', f'{name}.key', '-out', f'{name}.csr', '-subj', subject], directory)
    _openssl(['x509', '-req', '-in', f'{name}.csr', '-CA', f'{ca_stem}.pem', '-CAkey', f'{ca_stem}.key',
              '-CAcreateserial', '-days', str(CERT_DAYS), '-out', f'{name}.pem'], directory)


def governance_xml(domain_id: int = DOMAIN_ID) -> str:
    """Every topic of the domain: authenticated participants only, everything encrypted
    (RTPS messages, discovery, liveliness, metadata and data)."""
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd">
  <domain_access_rules>
    <domain_rule>
      <domains><id>{domain_id}</id></domains>
      <allow_unauthenticated_participants>false</allow_unauthenticated_participants>
      <enable_join_access_control>true</enable_join_access_control>
      <discovery_protection_kind>ENCRYPT</discovery_protection_kind>
      <liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>
      <rtps_protection_kind>ENCRYPT</rtps_protection_kind>
      <topic_access_rules>
        <topic_rule>
          <topic_expression>*</topic_expression>
          <enable_discovery_protection>true</enable_discovery_protection>
          <enable_liveliness_protection>true</enable_liveliness_protection>
          <enable_read_access_control>true</enable_read_access_control>
          <enable_write_access_control>true</enable_write_access_control>
          <metadata_protection_kind>ENCRYPT</metadata_protection_kind>
          <data_protection_kind>ENCRYPT</data_protection_kind>
        </topic_rule>
      </topic_access_rules>
    </domain_rule>
  </domain_access_rules>
</dds>
'''


def permissions_xml(identity: Identity, domain_id: int = DOMAIN_ID, days: int = CERT_DAYS) -> str:
    """One grant for this subject: only the listed topics (DDS names, e.g. rt/chatter); the rest is denied."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    not_before = (now - dt.timedelta(hours=1)).isoformat()
    not_after = (now + dt.timedelta(days=days)).isoformat()

    def topics(kind: str, names: list[str]) -> str:
        if not names:
            return ''
        listed = ''.join(f'<topic>{name}</topic>' for name in names)
        partitions = ''.join(f'<partition>{name}</partition>' for name in identity.partitions)
        partitions = f'<partitions>{partitions}</partitions>' if partitions else ''
        return f'<{kind}><topics>{listed}</topics>{partitions}</{kind}>'

    return f'''<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd">
  <permissions>
    <grant name="{identity.name}_grant">
      <subject_name>{identity.subject}</subject_name>
      <validity><not_before>{not_before}</not_before><not_after>{not_after}</not_after></validity>
      <allow_rule>
        <domains><id>{domain_id}</id></domains>
        {topics('publish', identity.publish)}
        {topics('subscribe', identity.subscribe)}
      </allow_rule>
      <default>DENY</default>
    </grant>
  </permissions>
</dds>
'''


def _sign(directory: Path, stem: str, ca_stem: str = 'permissions_ca') -> None:
    """S/MIME-signs STEM.xml with a permissions CA into STEM.p7s (what the AC plugin verifies)."""
    _openssl(['smime', '-sign', '-text', '-in', f'{stem}.xml', '-out', f'{stem}.p7s',
              '-signer', f'{ca_stem}.pem', '-inkey', f'{ca_stem}.key'], directory)


def find_plugin_dir() -> Optional[str]:
    for directory in sorted(glob.glob(PLUGIN_DIR_GLOB)):
        if all(os.path.exists(os.path.join(directory, name)) for name in PLUGIN_NAMES):
            return directory
    return None


def cyclone_security_xml(directory: Path, name: str, plugin_dir: str, prefix: str = '') -> str:
    """The <Security> part of a Cyclone DDS configuration for identity NAME (files in DIRECTORY;
    PREFIX 'foreign_' selects the intruder's own CAs and governance).

    Put it in CYCLONEDDS_URI (a file:// URI or the XML text itself; several are joined with ',')."""
    d = directory.resolve()

    def library(stem: str, kind: str) -> str:
        return (f'<Library path="{plugin_dir}/libdds_security_{stem}.so" '
                f'initFunction="init_{kind}" finalizeFunction="finalize_{kind}"/>')

    return ('<CycloneDDS><Domain id="any"><Security>'
            f'<Authentication>{library("auth", "authentication")}'
            f'<IdentityCA>file:{d}/{prefix}identity_ca.pem</IdentityCA>'
            f'<IdentityCertificate>file:{d}/{name}.pem</IdentityCertificate>'
            f'<PrivateKey>file:{d}/{name}.key</PrivateKey></Authentication>'
            f'<AccessControl>{library("ac", "access_control")}'
            f'<PermissionsCA>file:{d}/{prefix}permissions_ca.pem</PermissionsCA>'
            f'<Governance>file:{d}/{prefix}governance.p7s</Governance>'
            f'<Permissions>file:{d}/{name}_permissions.p7s</Permissions></AccessControl>'
            f'<Cryptographic>{library("crypto", "crypto")}</Cryptographic>'
            '</Security></Domain></CycloneDDS>')


def make_pki(directory: Path, identities: Sequence[Identity], plugin_dir: str,
             domain_id: int = DOMAIN_ID) -> dict[str, str]:
    """Writes CAs, certificates, signed governance and permissions, and NAME_security.xml per
    identity into DIRECTORY; returns {name: Cyclone security XML}. A ``foreign_ca`` identity gets
    a complete trust set of its own (identity CA, permissions CA, governance), as an intruder would."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # private keys inside
    prefixes = sorted({'foreign_' if identity.foreign_ca else '' for identity in identities})
    for prefix in prefixes:
        owner = 'Some other' if prefix else 'DC-DRL test'
        _make_ca(directory, f'{prefix}identity_ca', f'{owner} identity CA')
        _make_ca(directory, f'{prefix}permissions_ca', f'{owner} permissions CA')
        (directory / f'{prefix}governance.xml').write_text(governance_xml(domain_id))
        _sign(directory, f'{prefix}governance', f'{prefix}permissions_ca')
    configs = {}
    for identity in identities:
        prefix = 'foreign_' if identity.foreign_ca else ''
        _make_certificate(directory, f'{prefix}identity_ca', identity)
        (directory / f'{identity.name}_permissions.xml').write_text(permissions_xml(identity, domain_id))
        _sign(directory, f'{identity.name}_permissions', f'{prefix}permissions_ca')
        xml = cyclone_security_xml(directory, identity.name, plugin_dir, prefix)
        (directory / f'{identity.name}_security.xml').write_text(xml + '\n')
        configs[identity.name] = xml
    return configs


SROS2_ENCLAVE_FILES = ('identity_ca.cert.pem', 'cert.pem', 'key.pem', 'permissions_ca.cert.pem',
                       'governance.p7s', 'permissions.p7s')


def sros2_enclave_xml(enclave_dir: Path, plugin_dir: str) -> str:
    """Cyclone security XML for an enclave made by `ros2 security create_enclave KEYSTORE NAME`
    (KEYSTORE/enclaves/NAME): the same files rmw_cyclonedds_cpp hands to Cyclone under SROS2."""
    d = enclave_dir.resolve()
    missing = [name for name in SROS2_ENCLAVE_FILES if not (d / name).is_file()]
    if missing:
        raise FileNotFoundError(f'{d} is not an SROS2 enclave: missing {", ".join(missing)}')

    def library(stem: str, kind: str) -> str:
        return (f'<Library path="{plugin_dir}/libdds_security_{stem}.so" '
                f'initFunction="init_{kind}" finalizeFunction="finalize_{kind}"/>')

    return ('<CycloneDDS><Domain id="any"><Security>'
            f'<Authentication>{library("auth", "authentication")}'
            f'<IdentityCA>file:{d}/identity_ca.cert.pem</IdentityCA>'
            f'<IdentityCertificate>file:{d}/cert.pem</IdentityCertificate>'
            f'<PrivateKey>file:{d}/key.pem</PrivateKey></Authentication>'
            f'<AccessControl>{library("ac", "access_control")}'
            f'<PermissionsCA>file:{d}/permissions_ca.cert.pem</PermissionsCA>'
            f'<Governance>file:{d}/governance.p7s</Governance>'
            f'<Permissions>file:{d}/permissions.p7s</Permissions></AccessControl>'
            f'<Cryptographic>{library("crypto", "crypto")}</Cryptographic>'
            '</Security></Domain></CycloneDDS>')


# ------------------------------------------------------------------------------- prerequisites
def secure_python_problem(python: str) -> Optional[str]:
    """None if PYTHON imports a cyclonedds 0.10.x linked to a libddsc with security, else why not."""
    probe = ('import importlib.metadata as m, cyclonedds.__library__ as l; '
             'print(m.version("cyclonedds")); print(l.library_path)')
    try:
        result = subprocess.run([python, '-c', probe], capture_output=True, text=True, timeout=60)
    except OSError as error:
        return f'cannot run {python}: {error}'
    if result.returncode != 0:
        return f'{python} has no usable cyclonedds: {result.stderr.strip().splitlines()[-1:]}'
    version, library = result.stdout.split()[:2]
    if not version.startswith('0.10.'):
        return (f'{python} has cyclonedds {version}; the security plugins need the 0.10.x binding '
                f'built against Debian libddsc 0.10.2 (docs/security.md)')
    real = os.path.realpath(library)
    if not os.path.exists(real) or b'IdentityCertificate' not in Path(real).read_bytes():
        return f'{python} uses {real}, a libddsc built without DDS Security'
    return None


def prerequisites(python: Optional[str]) -> list[str]:
    """Every missing prerequisite of ``demo``, as a sentence each (empty: ready)."""
    problems = []
    if not sys.platform.startswith('linux'):
        return [f'needs Linux (this is {sys.platform})']
    if os.geteuid() != 0:
        problems.append('needs root (network namespaces and raw packet capture)')
    for tool in ('ip', 'tc', 'openssl'):
        if shutil.which(tool) is None:
            problems.append(f"'{tool}' not found")
    if find_plugin_dir() is None:
        problems.append('no DDS Security plugins (libdds_security_{auth,ac,crypto}.so) in '
                        f'{PLUGIN_DIR_GLOB}: apt-get install libddsc0debian cyclonedds-dev')
    if not python:
        problems.append(f'no secure Python given (--python or ${SECURE_PYTHON_ENV}): a Python with '
                        'cyclonedds 0.10.x built against Debian libddsc 0.10.2 (docs/security.md)')
    else:
        problem = secure_python_problem(python)
        if problem:
            problems.append(problem)
    if not problems:
        sys.path.insert(0, NODE_PATHS[0])
        from dcdrl_core.netns import netns_available
        available, reason = netns_available()
        if not available:
            problems.append(reason)
    return problems


# ------------------------------------------------------------------------------- node runner
def adapt_cyclonedds_010() -> None:
    """Gives cyclonedds-python 0.10.x the parts of the 11.x API that DC-DRL's runtime uses.

    0.10's ``ddspy_take`` has no sample-state mask argument; ``Entity.instance_handle`` fails
    (``int()`` of a ctypes value); DataWriter/DataReader lack ``get_publication_matched_status``,
    ``get_subscription_matched_status`` and ``get_matched_subscriptions/publications(_data)``.
    The replacements call the same libddsc functions as 11.x does. With them, the runtime's
    graph and command-line tests pass on 0.10.2 (docs/security.md)."""
    import ctypes as ct
    import uuid
    import cyclonedds._clayer as clayer
    from cyclonedds import core, pub, sub
    from cyclonedds.internal import dds_c_t, load_cyclonedds
    from cyclonedds.qos import _CQos

    take = clayer.ddspy_take
    clayer.ddspy_take = lambda reader, *mask_and_count: take(reader, mask_and_count[-1])
    lib = load_cyclonedds()

    def checked(ret: int, what: str) -> None:
        if ret < 0:
            raise core.DDSException(ret, f'Occurred in {what}')

    lib.dds_get_instance_handle.argtypes = [ct.c_int32, ct.POINTER(ct.c_uint64)]

    def instance_handle(self: Any) -> int:
        value = ct.c_uint64()
        checked(lib.dds_get_instance_handle(self._ref, ct.byref(value)), 'dds_get_instance_handle')
        return value.value

    core.Entity.instance_handle = property(instance_handle)

    def matched_status(function: Any, struct: Any) -> Any:
        function.argtypes = [ct.c_int32, ct.POINTER(struct)]

        def get(self: Any) -> Any:
            status = struct()
            checked(function(self._ref, ct.byref(status)), function.__name__)
            return status
        return get

    pub.DataWriter.get_publication_matched_status = matched_status(
        lib.dds_get_publication_matched_status, dds_c_t.publication_matched_status)
    sub.DataReader.get_subscription_matched_status = matched_status(
        lib.dds_get_subscription_matched_status, dds_c_t.subscription_matched_status)

    class Endpoint(ct.Structure):  # dds_builtintopic_endpoint_t
        _fields_ = [('key', ct.c_uint8 * 16), ('participant_key', ct.c_uint8 * 16),
                    ('participant_instance_handle', ct.c_uint64), ('topic_name', ct.c_char_p),
                    ('type_name', ct.c_char_p), ('qos', ct.c_void_p)]

    class MatchedEndpoint:  # the fields of cyclonedds.builtin.DcpsEndpoint the runtime reads
        def __init__(self, endpoint: Endpoint) -> None:
            self.key = uuid.UUID(bytes=bytes(endpoint.key))
            self.participant_key = uuid.UUID(bytes=bytes(endpoint.participant_key))
            self.participant_instance_handle = endpoint.participant_instance_handle
            self.topic_name = endpoint.topic_name.decode()
            self.type_name = endpoint.type_name.decode()
            self.qos = _CQos.cqos_to_qos(ct.cast(endpoint.qos, dds_c_t.qos_p)) if endpoint.qos else None

    lib.dds_builtintopic_free_endpoint.argtypes = [ct.POINTER(Endpoint)]
    for kind, cls in (('subscription', pub.DataWriter), ('publication', sub.DataReader)):
        list_function = getattr(lib, f'dds_get_matched_{kind}s')
        list_function.argtypes = [ct.c_int32, ct.POINTER(ct.c_uint64), ct.c_size_t]
        data_function = getattr(lib, f'dds_get_matched_{kind}_data')
        data_function.argtypes = [ct.c_int32, ct.c_uint64]
        data_function.restype = ct.POINTER(Endpoint)

        def handles(self: Any, list_function: Any = list_function) -> list[int]:
            size = 16
            while True:  # the call returns the number matched, which may exceed the array
                found = (ct.c_uint64 * size)()
                count = list_function(self._ref, found, size)
                checked(count, list_function.__name__)
                if count <= size:
                    return list(found[:count])
                size = count

        def data(self: Any, handle: int, data_function: Any = data_function) -> Optional[MatchedEndpoint]:
            pointer = data_function(self._ref, handle)
            if not pointer:
                return None
            try:
                return MatchedEndpoint(pointer.contents)
            finally:
                lib.dds_builtintopic_free_endpoint(pointer)

        setattr(cls, f'get_matched_{kind}s', handles)
        setattr(cls, f'get_matched_{kind}_data', data)


def run_node(argv: list[str]) -> int:
    """Runs `dcdrl run ARGV...` in this (secure) Python, adapting a 0.10.x binding first."""
    sys.path[:0] = NODE_PATHS
    os.environ.setdefault('DCDRL_BACKEND', 'cyclone')
    import importlib.metadata
    if importlib.metadata.version('cyclonedds').startswith('0.10.'):
        adapt_cyclonedds_010()
    from dcdrl_core.cli import main
    return main(['run', *argv])


# ------------------------------------------------------------------------------- capture
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
        print(f'CAPTURING on {interface}', flush=True)
        while not _STOP and time.monotonic() < deadline:
            try:
                frame = sock.recv(65535)
            except socket.timeout:
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
    found = {}
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


# ------------------------------------------------------------------------------- the proof
def _heard(lines: Sequence[str]) -> list[str]:
    return [line.split(HEARD, 1)[1].rstrip(']') for line in lines if HEARD in line]


def demo(python: str, seconds: float, plugin_dir: str, timeout: float = 60.0, keep: Optional[str] = None) -> dict:
    """The proof (module docstring); KEEP: a directory that gets the PKI and the two captures
    (else a temporary directory, deleted at the end)."""
    sys.path.insert(0, NODE_PATHS[0])
    from dcdrl_core.netns import Testbed
    talker = Identity('talker', publish=['rt/chatter', 'ros_discovery_info'])
    listener = Identity('listener', subscribe=['rt/chatter'], publish=['ros_discovery_info'])
    forged = Identity('forged', subscribe=['rt/chatter'], publish=['ros_discovery_info'], foreign_ca=True)
    unpermitted = Identity('unpermitted', publish=['ros_discovery_info'])  # may not read rt/chatter
    result: dict[str, Any] = {'python': python, 'plugin_dir': plugin_dir}
    with tempfile.TemporaryDirectory(prefix='dcdrl-pki-') as tmp:
        work = Path(keep) if keep else Path(tmp)
        configs = make_pki(work / 'pki', [talker, listener, forged, unpermitted], plugin_dir)
        with Testbed(hosts=('alice', 'bob'), subnet='10.78.0.0/24') as bed:
            def env(host: str, identity: Optional[str]) -> dict[str, str]:
                base = bed.dds_env(host, DOMAIN_ID, DCDRL_BACKEND='cyclone', PYTHONPATH=os.pathsep.join(NODE_PATHS))
                base.pop('CYCLONEDDS_URI', None)
                if identity:
                    base['CYCLONEDDS_URI'] = configs[identity]
                return base

            def node(host: str, executable: str, name: str, identity: Optional[str]) -> Any:
                argv = [python, str(SCRIPT), 'node', 'dcdrl_core', executable, '--ros-args', '-r', f'__node:={name}']
                return bed.run(host, argv, env(host, identity))

            def start_capture(label: str) -> tuple[Any, str]:
                path = str(work / f'{label}.pcap')
                child = bed.run('alice', [sys.executable, str(SCRIPT), 'capture', 'eth0', path, str(timeout * 3)])
                child.wait_for_line('CAPTURING', timeout)
                return child, path

            # 1. plaintext control: the capture must see the payload and the topic name
            cap, path = start_capture('plain')
            nodes = {'talker': node('alice', 'talker', 'talker', None),
                     'listener': node('bob', 'listener', 'listener', None)}
            started = time.monotonic()
            nodes['listener'].wait_for_line(HEARD, timeout)
            result['plain_first_sample_s'] = round(time.monotonic() - started, 2)
            _run_for(seconds, nodes, cap)
            result['plain'] = {'heard': len(_heard(nodes['listener'].lines)),
                               'capture': analyse_pcap(path, [PAYLOAD_TEXT, TOPIC_TEXT])}

            # 2. secured: one permitted listener, three intruders in the same namespace
            cap, path = start_capture('secure')
            nodes = {'talker': node('alice', 'talker', 'talker', 'talker'),
                     'listener': node('bob', 'listener', 'listener', 'listener'),
                     'no_security': node('bob', 'listener', 'intruder_plain', None),
                     'foreign_ca': node('bob', 'listener', 'intruder_forged', 'forged'),
                     'not_permitted': node('bob', 'listener', 'intruder_unpermitted', 'unpermitted')}
            started = time.monotonic()
            nodes['listener'].wait_for_line(HEARD, timeout)
            result['secure_first_sample_s'] = round(time.monotonic() - started, 2)
            _run_for(seconds, nodes, cap)
            heard = _heard(nodes['listener'].lines)
            result['secure'] = {
                'heard': len(heard),
                'all_from_talker': all(re.fullmatch(r'Hello World: \d+', text) for text in heard),
                'intruders_heard': {k: len(_heard(nodes[k].lines)) for k in INTRUDERS},
                'intruder_errors': {k: _errors(nodes[k].lines) for k in INTRUDERS},
                'refusals_logged_by_talker_and_listener': _errors(nodes['talker'].lines + nodes['listener'].lines),
                'capture': analyse_pcap(path, [PAYLOAD_TEXT, TOPIC_TEXT])}
    result['ok'] = _verdict(result)
    return result


def _run_for(seconds: float, nodes: dict[str, Any], capture_child: Any) -> None:
    """Lets the graph run SECONDS more (a fixed measuring window), then stops every process."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
    for child in nodes.values():
        child.stop()
    capture_child.stop()


def _errors(lines: Sequence[str]) -> list[str]:
    """The first lines that say why a participant was refused (Cyclone's log, a DDSException)."""
    found = [line.strip()[:300] for line in lines if 'DDSException' in line]
    found += [line.strip()[:300] for line in lines if any(mark in line for mark in ('failed', 'Error', 'FATAL'))]
    return found[:2]


def _seen(counts: dict) -> int:
    return counts['in_handshake'] + counts['elsewhere']


def _verdict(result: dict) -> bool:
    """Plain run: the capture sees payload and topic name. Secured run: the listener hears the
    talker, no intruder hears anything, the secured participants never send the payload text in the
    clear, the topic name only inside the permissions document of the handshake, no plain DATA
    but from the built-in writers, and SRTPS-protected messages flow."""
    plain, secure = result['plain'], result['secure']
    clear = secure['capture']['from_secure']
    return (plain['heard'] > 0 and all(_seen(v) > 0 for v in plain['capture']['from_others']['needles'].values())
            and secure['heard'] > 0 and secure['all_from_talker']
            and not any(secure['intruders_heard'].values())
            and secure['capture']['secure_participants'] >= 2
            and _seen(clear['needles'][PAYLOAD_TEXT.decode()]) == 0
            and clear['needles'][TOPIC_TEXT.decode()]['elsewhere'] == 0
            and set(clear['plain_data_by_writer']) <= set(_CLEAR_BUILTIN.values()) | {_ENDPOINT_DISPOSE}
            and clear['srtps_protected'] > 0)


# ------------------------------------------------------------------------------- latency
_LATENCY = re.compile(r'size (\d+) mean ([\d.]+)us min ([\d.]+)us 50% ([\d.]+)us 90% ([\d.]+)us '
                      r'99% ([\d.]+)us max ([\d.]+)us cnt (\d+)')


def latency(seconds: float, plugin_dir: str, size: int) -> dict:
    """Round-trip latency with ddsperf ping/pong between the namespaces, plain and secured."""
    sys.path.insert(0, NODE_PATHS[0])
    from dcdrl_core.netns import Testbed
    if shutil.which('ddsperf') is None:
        raise RuntimeError('ddsperf not found: apt-get install cyclonedds-tools')
    # ddsperf uses its own partitions, so these two may use every topic in every partition.
    ping, pong = (Identity(name, ['*'], ['*'], partitions=['*']) for name in ('ping', 'pong'))
    results = {}
    with tempfile.TemporaryDirectory(prefix='dcdrl-pki-') as tmp:
        configs = make_pki(Path(tmp), [ping, pong], plugin_dir)
        with Testbed(hosts=('alice', 'bob'), subnet='10.78.0.0/24') as bed:
            for mode in ('plain', 'secure'):
                def uri(host: str, name: str) -> str:
                    peers = ''.join(f'<Peer address="{p}"/>' for p in bed.peers(host))
                    base = ('<CycloneDDS><Domain id="any"><General><AllowMulticast>false</AllowMulticast></General>'
                            f'<Discovery><ParticipantIndex>auto</ParticipantIndex><Peers>{peers}</Peers>'
                            '</Discovery></Domain></CycloneDDS>')
                    return base + (',' + configs[name] if mode == 'secure' else '')

                duration = str(int(seconds + 10))
                pong_child = bed.run('bob', ['ddsperf', '-D', duration, 'pong'],
                                     dict(os.environ, CYCLONEDDS_URI=uri('bob', 'pong')))
                ping_child = bed.run('alice', ['ddsperf', '-D', str(int(seconds + 3)), '-Qminmatch:1',
                                               '-Qinitwait:10', 'ping', 'size', str(size)],
                                     dict(os.environ, CYCLONEDDS_URI=uri('alice', 'ping')))
                ping_child.process.wait(seconds + 30)
                ping_child.stop()
                pong_child.stop()
                rows = [tuple(float(x) for x in m.groups()) for m in map(_LATENCY.search, ping_child.lines) if m]
                rows = [r for r in rows if r[7] > 0][1:]  # drop the first second (discovery, warm-up)
                if not rows:
                    raise RuntimeError(f'no latency from ddsperf ({mode}):\n' + '\n'.join(ping_child.lines[-20:]))
                medians = sorted(r[3] for r in rows)
                results[mode] = {'round_trip_median_us': medians[len(medians) // 2],
                                 'round_trip_p99_us_worst_second': max(r[5] for r in rows),
                                 'round_trips_per_s': sum(r[7] for r in rows) / len(rows), 'seconds': len(rows),
                                 'size_bytes': size}
    return results


# ------------------------------------------------------------------------------- command line
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['node']:  # internal, inside a namespace: the rest is `dcdrl run`'s
        return run_node(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    python_help = f'the secure Python (default ${SECURE_PYTHON_ENV})'
    check = sub.add_parser('check', help='list missing prerequisites')
    check.add_argument('--python', default=os.environ.get(SECURE_PYTHON_ENV), help=python_help)
    pki = sub.add_parser('pki', help='write a test PKI and Cyclone security XML into DIR')
    pki.add_argument('directory')
    pki.add_argument('--identity', action='append', default=[], metavar='NAME:pub=T,..:sub=T,..',
                     help="e.g. talker:pub=rt/chatter,ros_discovery_info (DDS topic names, '*' for all); "
                          "default: talker and listener of /chatter")
    pki.add_argument('--domain-id', type=int, default=DOMAIN_ID)
    enclave = sub.add_parser('enclave-xml', help='print the Cyclone security XML for an SROS2 enclave directory')
    enclave.add_argument('enclave_dir', help='KEYSTORE/enclaves/NAME (made by ros2 security create_enclave)')
    run = sub.add_parser('demo', help='the two-namespace proof; last line is JSON')
    run.add_argument('--python', default=os.environ.get(SECURE_PYTHON_ENV), help=python_help)
    run.add_argument('--seconds', type=float, default=4.0, help='measuring window per phase (default 4)')
    run.add_argument('--keep', metavar='DIR', help='keep the PKI and the captures (pcap) in DIR')
    lat = sub.add_parser('latency', help='ddsperf ping/pong plain vs secure; last line is JSON')
    lat.add_argument('--seconds', type=float, default=5.0)
    lat.add_argument('--size', type=int, default=12, help='ddsperf KS payload bytes (>= 12)')
    cap = sub.add_parser('capture', help='(internal) raw capture to pcap')
    cap.add_argument('interface')
    cap.add_argument('out')
    cap.add_argument('max_seconds', type=float)
    args = parser.parse_args(argv)

    if args.command == 'capture':
        return capture(args.interface, args.out, args.max_seconds)
    plugin_dir = find_plugin_dir()
    if args.command == 'check':
        problems = prerequisites(args.python)
        print('\n'.join(f'missing: {p}' for p in problems) if problems else f'ready (plugins in {plugin_dir})')
        return 1 if problems else 0
    if plugin_dir is None:
        print(f'no DDS Security plugins in {PLUGIN_DIR_GLOB}: apt-get install libddsc0debian', file=sys.stderr)
        return 1
    if args.command == 'pki':
        identities = [_parse_identity(text) for text in args.identity] or [
            Identity('talker', publish=['rt/chatter', 'ros_discovery_info']),
            Identity('listener', subscribe=['rt/chatter'], publish=['ros_discovery_info'])]
        make_pki(Path(args.directory), identities, plugin_dir, args.domain_id)
        for identity in identities:
            xml_path = Path(args.directory).resolve() / f'{identity.name}_security.xml'
            print(f'{identity.name}: CYCLONEDDS_URI=file://{xml_path}')
        return 0
    if args.command == 'enclave-xml':
        try:
            print(sros2_enclave_xml(Path(args.enclave_dir), plugin_dir))
        except FileNotFoundError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    if args.command == 'latency':
        print(json.dumps(latency(args.seconds, plugin_dir, args.size)))
        return 0
    problems = prerequisites(args.python)
    if problems:
        print('\n'.join(f'missing: {p}' for p in problems), file=sys.stderr)
        return 1
    result = demo(args.python, args.seconds, plugin_dir, keep=args.keep)
    _print_summary(result)
    print(json.dumps(result))
    return 0 if result['ok'] else 1


def _parse_identity(text: str) -> Identity:
    """'NAME:pub=T1,T2:sub=T3' (DDS topic names, e.g. rt/chatter; '*' matches any)."""
    name, *parts = text.split(':')
    if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', name):
        raise SystemExit(f'--identity {text!r}: NAME must be letters, digits and _')
    topics: dict[str, list[str]] = {'pub': [], 'sub': []}
    for part in parts:
        kind, _, names = part.partition('=')
        if kind not in topics:
            raise SystemExit(f"--identity {text!r}: expected NAME:pub=T1,T2:sub=T3, got {part!r}")
        topics[kind] += [t for t in names.split(',') if t]
    return Identity(name, topics['pub'], topics['sub'])


def _print_summary(result: dict) -> None:
    plain, secure = result['plain'], result['secure']
    p, c = plain['capture']['from_others'], secure['capture']['from_secure']
    payload, topic = PAYLOAD_TEXT.decode(), TOPIC_TEXT.decode()
    print(f"plain:  listener heard {plain['heard']} (first after {result['plain_first_sample_s']} s); "
          f"{p['messages']} RTPS messages captured, payload text in {_seen(p['needles'][payload])}, "
          f"topic name in {_seen(p['needles'][topic])}")
    print(f"secure: listener heard {secure['heard']} (first after {result['secure_first_sample_s']} s); "
          f"intruders heard {secure['intruders_heard']}")
    print(f"secure capture, from the {secure['capture']['secure_participants']} secured participants: "
          f"{c['messages']} RTPS messages, {c['srtps_protected']} SRTPS-protected, DATA in the clear "
          f"{c['plain_data_by_writer']}; payload text in {_seen(c['needles'][payload])}, topic name in "
          f"{c['needles'][topic]['in_handshake']} handshake messages (permissions document) and "
          f"{c['needles'][topic]['elsewhere']} others")
    print('OK' if result['ok'] else 'FAILED')


if __name__ == '__main__':
    sys.exit(main())
