#!/usr/bin/env python3
"""Authenticated, encrypted DDS without ROS 2: Cyclone DDS Security between two network namespaces.

    sudo python3 scripts/secure_dds.py check [--python PY] [--plugin-dir D]   what is missing, else "ready"
    python3 scripts/secure_dds.py pki DIR [--identity NAME:pub=T,..:sub=T,.. ...]  test PKI + Cyclone XML
    python3 scripts/secure_dds.py enclave-xml KEYSTORE/enclaves/NAME   Cyclone XML for an SROS2 enclave
    sudo python3 scripts/secure_dds.py demo --python PY [--plugin-dir D] [--seconds 4]   the proof (last line: JSON)
    sudo python3 scripts/secure_dds.py latency [--seconds 5]   ddsperf ping/pong, plain vs secure

PY is a Python whose ``cyclonedds`` is 0.10.x built against a libddsc with DDS Security, D the
folder of that Cyclone's security plugins: ROS 2 Jazzy's (``secure_ros2.py binding`` builds PY
and prints both) or Debian's libddsc0debian 0.10.2 (the default D; docs/security.md). The PyPI
wheels have no DDS Security. The orchestrating commands themselves need only the standard
library, ``openssl``, ``ip``, ``tc`` and root.

``demo`` builds a throw-away PKI in a temporary directory (identity CA, permissions CA, one
certificate per participant, signed governance and permissions), two namespaces ``alice`` and
``bob`` joined by a switch (dcdrl_ros.netns.Testbed, discovery through ROS_STATIC_PEERS as on
real machines), and runs DC-DRL's own talker (alice) and listener (bob) twice:

1. without security, with a raw packet capture on alice's interface: the payload text and the
   topic name must be visible (this proves that the capture can see them);
2. with security: the secured listener must hear the talker; three intruders in bob must hear
   nothing: one without security, one whose certificate comes from another CA, one with a valid
   certificate whose permissions do not allow reading the topic; the capture must not contain
   the payload text or the topic name, and the RTPS messages must be SRTPS-protected.

Everything it creates (keys, namespaces, processes) is deleted at the end, also after errors.

The test PKI is made by dds_certificates.py (identities, CAs, certificates, signing) and
dds_security_documents.py (governance, permissions, Cyclone's security XML), in this folder.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dds_certificates import Identity, node_identity  # noqa: E402  (this folder)
from dds_security_documents import (  # noqa: E402
    DOMAIN_ID,
    PLUGIN_DIR_GLOB,
    find_plugin_dir,
    make_pki,
    sros2_enclave_xml,
)
from rtps_capture import analyse_pcap, plain_capture_shows_text, secure_capture_is_clean, seen_count, start_capture  # noqa: E402  (this folder)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
NODE_PATHS = [str(ROOT / 'src' / 'dcdrl_ros'), str(ROOT / 'src' / 'dcdrl_msgs')]
PAYLOAD_TEXT = b'Hello World'     # what the talker sends ('Hello World: N')
TOPIC_TEXT = b'rt/chatter'        # the DDS topic name of /chatter
HEARD = 'I heard: ['
SECURE_PYTHON_ENV = 'DCDRL_SECURE_PYTHON'
INTRUDERS = ('no_security', 'foreign_ca', 'not_permitted')


# ------------------------------------------------------------------------------- prerequisites
def secure_python_problem(python: str) -> str | None:
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
        return (f'{python} has cyclonedds {version}; the security plugins need the 0.10.x binding built '
                f'against a libddsc 0.10 with DDS Security (ROS 2 Jazzy\'s or Debian\'s; docs/security.md)')
    real = os.path.realpath(library)
    if not os.path.exists(real) or b'IdentityCertificate' not in Path(real).read_bytes():
        return f'{python} uses {real}, a libddsc built without DDS Security'
    return None


def host_problems() -> list[str]:
    """What this machine lacks for a two-namespace proof, as a sentence each (empty: ready)."""
    if not sys.platform.startswith('linux'):
        return [f'needs Linux (this is {sys.platform})']
    problems = []
    if os.geteuid() != 0:
        problems.append('needs root (network namespaces and raw packet capture)')
    for tool in ('ip', 'tc', 'openssl'):
        if shutil.which(tool) is None:
            problems.append(f"'{tool}' not found")
    if not problems:
        sys.path.insert(0, NODE_PATHS[0])
        from dcdrl_ros.netns import netns_available
        available, reason = netns_available()
        if not available:
            problems.append(reason)
    return problems


def prerequisites(python: str | None, plugin_dir: str | None = None) -> list[str]:
    """Every missing prerequisite of ``demo``, as a sentence each (empty: ready)."""
    problems = host_problems()
    if find_plugin_dir(plugin_dir) is None:
        problems.append('no DDS Security plugins (libdds_security_{auth,ac,crypto}.so) in '
                        f'{plugin_dir or PLUGIN_DIR_GLOB}: `secure_ros2.py binding` names ROS 2\'s '
                        '(--plugin-dir), or apt-get install libddsc0debian cyclonedds-dev')
    if not python:
        problems.append(f'no secure Python given (--python or ${SECURE_PYTHON_ENV}): a Python with cyclonedds '
                        '0.10.x built against a libddsc with DDS Security (`secure_ros2.py binding`; docs/security.md)')
    else:
        problem = secure_python_problem(python)
        if problem:
            problems.append(problem)
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

    # cyclonedds's Python classes lack these calls: added to them here (a script, not the runtime)
    core.Entity.instance_handle = property(instance_handle)  # type: ignore[assignment]

    def matched_status(function: Any, struct: Any) -> Any:
        function.argtypes = [ct.c_int32, ct.POINTER(struct)]

        def get(self: Any) -> Any:
            status = struct()
            checked(function(self._ref, ct.byref(status)), function.__name__)
            return status
        return get

    pub.DataWriter.get_publication_matched_status = matched_status(  # type: ignore[method-assign]
        lib.dds_get_publication_matched_status, dds_c_t.publication_matched_status)
    sub.DataReader.get_subscription_matched_status = matched_status(  # type: ignore[method-assign]
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

        def data(self: Any, handle: int, data_function: Any = data_function) -> MatchedEndpoint | None:
            pointer = data_function(self._ref, handle)
            if not pointer:
                return None
            try:
                return MatchedEndpoint(pointer.contents)
            finally:
                lib.dds_builtintopic_free_endpoint(pointer)

        setattr(cls, f'get_matched_{kind}s', handles)
        setattr(cls, f'get_matched_{kind}_data', data)

    # The runtime gives Cyclone 11 0.10's peer pinging with InitialLocatorPruneDelay, an element that
    # 0.10 refuses ("unknown element") and does not need: it keeps announcing itself to every peer.
    from dcdrl_ros.runtime import context
    context.PEER_PINGING = re.sub(r'<InitialLocatorPruneDelay>[^<]*</InitialLocatorPruneDelay>', '',
                                  context.PEER_PINGING)


def run_node(argv: list[str]) -> int:
    """Runs `dcdrl run ARGV...` in this (secure) Python, adapting a 0.10.x binding first."""
    sys.path[:0] = NODE_PATHS
    os.environ.setdefault('DCDRL_BACKEND', 'cyclone')
    import importlib.metadata
    if importlib.metadata.version('cyclonedds').startswith('0.10.'):
        adapt_cyclonedds_010()
    from dcdrl_ros.cli import main
    return main(['run', *argv])


# ------------------------------------------------------------------------------- the proof
def heard_texts(lines: Sequence[str]) -> list[str]:
    return [line.split(HEARD, 1)[1].rstrip(']') for line in lines if HEARD in line]


def demo(python: str, seconds: float, plugin_dir: str, timeout: float = 60.0, keep: str | None = None,
         domain_id: int = DOMAIN_ID) -> dict:
    """The proof (module docstring); KEEP: a directory that gets the PKI and the two captures
    (else a temporary directory, deleted at the end)."""
    sys.path.insert(0, NODE_PATHS[0])
    from dcdrl_ros.netns import Testbed
    talker = node_identity('talker', publish=['rt/chatter'])
    listener = node_identity('listener', subscribe=['rt/chatter'])
    forged = node_identity('forged', subscribe=['rt/chatter'], foreign_ca=True)
    unpermitted = node_identity('unpermitted')  # may not read rt/chatter
    result: dict[str, Any] = {'python': python, 'plugin_dir': plugin_dir}
    with tempfile.TemporaryDirectory(prefix='dcdrl-pki-') as tmp:
        work = Path(keep) if keep else Path(tmp)
        configs = make_pki(work / 'pki', [talker, listener, forged, unpermitted], plugin_dir, domain_id)
        with Testbed(hosts=('alice', 'bob'), subnet='10.78.0.0/24') as bed:
            def env(host: str, identity: str | None) -> dict[str, str]:
                base = bed.dds_env(host, domain_id, DCDRL_BACKEND='cyclone', PYTHONPATH=os.pathsep.join(NODE_PATHS))
                base.pop('CYCLONEDDS_URI', None)
                if identity:
                    base['CYCLONEDDS_URI'] = configs[identity]
                return base

            def node(host: str, executable: str, name: str, identity: str | None) -> Any:
                argv = [python, str(SCRIPT), 'node', 'dcdrl_ros', executable, '--ros-args', '-r', f'__node:={name}']
                return bed.run(host, argv, env(host, identity))

            # 1. plaintext control: the capture must see the payload and the topic name
            path = str(work / 'plain.pcap')
            cap = start_capture(bed, 'alice', path, timeout)
            nodes = {'talker': node('alice', 'talker', 'talker', None),
                     'listener': node('bob', 'listener', 'listener', None)}
            started = time.monotonic()
            nodes['listener'].wait_for_line(HEARD, timeout)
            result['plain_first_sample_s'] = round(time.monotonic() - started, 2)
            run_for(seconds, nodes, cap)
            result['plain'] = {'heard': len(heard_texts(nodes['listener'].lines)),
                               'capture': analyse_pcap(path, [PAYLOAD_TEXT, TOPIC_TEXT])}

            # 2. secured: one permitted listener, three intruders in the same namespace
            path = str(work / 'secure.pcap')
            cap = start_capture(bed, 'alice', path, timeout)
            nodes = {'talker': node('alice', 'talker', 'talker', 'talker'),
                     'listener': node('bob', 'listener', 'listener', 'listener'),
                     'no_security': node('bob', 'listener', 'intruder_plain', None),
                     'foreign_ca': node('bob', 'listener', 'intruder_forged', 'forged'),
                     'not_permitted': node('bob', 'listener', 'intruder_unpermitted', 'unpermitted')}
            started = time.monotonic()
            nodes['listener'].wait_for_line(HEARD, timeout)
            result['secure_first_sample_s'] = round(time.monotonic() - started, 2)
            run_for(seconds, nodes, cap)
            heard = heard_texts(nodes['listener'].lines)
            result['secure'] = {
                'heard': len(heard),
                'all_from_talker': all(re.fullmatch(r'Hello World: \d+', text) for text in heard),
                'intruders_heard': {k: len(heard_texts(nodes[k].lines)) for k in INTRUDERS},
                'intruder_errors': {k: refusal_lines(nodes[k].lines) for k in INTRUDERS},
                'refusals_logged_by_talker_and_listener': refusal_lines(nodes['talker'].lines
                                                                        + nodes['listener'].lines),
                'capture': analyse_pcap(path, [PAYLOAD_TEXT, TOPIC_TEXT])}
    result['ok'] = _verdict(result)
    return result


def run_for(seconds: float, nodes: dict[str, Any], capture_child: Any) -> None:
    """Lets the graph run SECONDS more (a fixed measuring window), then stops every process."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
    for child in nodes.values():
        child.stop()
    capture_child.stop()


def refusal_lines(lines: Sequence[str]) -> list[str]:
    """The first lines that say why a participant was refused (Cyclone's log, a DDSException)."""
    found = [line.strip()[:300] for line in lines if 'DDSException' in line]
    found += [line.strip()[:300] for line in lines if any(mark in line for mark in ('failed', 'Error', 'FATAL'))]
    return found[:2]


def _verdict(result: dict) -> bool:
    """Plain run: the capture sees payload and topic name. Secured run: the listener hears the
    talker, no intruder hears anything, and the capture is clean (secure_capture_is_clean)."""
    plain, secure = result['plain'], result['secure']
    return (plain['heard'] > 0 and plain_capture_shows_text(plain['capture'])
            and secure['heard'] > 0 and secure['all_from_talker']
            and not any(secure['intruders_heard'].values())
            and secure_capture_is_clean(secure['capture'], PAYLOAD_TEXT.decode(), TOPIC_TEXT.decode()))


# ------------------------------------------------------------------------------- latency
_LATENCY = re.compile(r'size (\d+) mean ([\d.]+)us min ([\d.]+)us 50% ([\d.]+)us 90% ([\d.]+)us '
                      r'99% ([\d.]+)us max ([\d.]+)us cnt (\d+)')


def latency(seconds: float, plugin_dir: str, size: int) -> dict:
    """Round-trip latency with ddsperf ping/pong between the namespaces, plain and secured."""
    sys.path.insert(0, NODE_PATHS[0])
    from dcdrl_ros.netns import Testbed
    if shutil.which('ddsperf') is None:
        raise RuntimeError('ddsperf not found: apt-get install cyclonedds-tools')
    # ddsperf uses its own partitions, so these two may use every topic in every partition.
    ping, pong = (Identity(name, ['*'], ['*'], partitions=['*']) for name in ('ping', 'pong'))
    results = {}
    with tempfile.TemporaryDirectory(prefix='dcdrl-pki-') as tmp:
        configs = make_pki(Path(tmp), [ping, pong], plugin_dir)
        with Testbed(hosts=('alice', 'bob'), subnet='10.78.0.0/24') as bed:
            for mode in ('plain', 'secure'):
                def uri(host: str, name: str, mode: str = mode) -> str:
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
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['node']:  # internal, inside a namespace: the rest is `dcdrl run`'s
        return run_node(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    python_help = f'the secure Python (default ${SECURE_PYTHON_ENV})'
    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument('--plugin-dir', help=f'where libdds_security_*.so are (default: {PLUGIN_DIR_GLOB})')
    check = sub.add_parser('check', help='list missing prerequisites', parents=[plugins])
    check.add_argument('--python', default=os.environ.get(SECURE_PYTHON_ENV), help=python_help)
    pki = sub.add_parser('pki', help='write a test PKI and Cyclone security XML into DIR', parents=[plugins])
    pki.add_argument('directory')
    pki.add_argument('--identity', action='append', default=[], metavar='NAME:pub=T,..:sub=T,..',
                     help="e.g. talker:pub=rt/chatter (DDS topic names, '*' for all; what every node uses is "
                          "added: NODE_PUBLISH, NODE_SUBSCRIBE); default: talker and listener of /chatter")
    pki.add_argument('--domain-id', type=int, default=DOMAIN_ID)
    enclave = sub.add_parser('enclave-xml', help='print the Cyclone security XML for an SROS2 enclave directory',
                             parents=[plugins])
    enclave.add_argument('enclave_dir', help='KEYSTORE/enclaves/NAME (made by ros2 security create_enclave)')
    run = sub.add_parser('demo', help='the two-namespace proof; last line is JSON', parents=[plugins])
    run.add_argument('--python', default=os.environ.get(SECURE_PYTHON_ENV), help=python_help)
    run.add_argument('--seconds', type=float, default=4.0, help='measuring window per phase (default 4)')
    run.add_argument('--keep', metavar='DIR', help='keep the PKI and the captures (pcap) in DIR')
    run.add_argument('--domain-id', type=int, default=DOMAIN_ID)
    lat = sub.add_parser('latency', help='ddsperf ping/pong plain vs secure; last line is JSON', parents=[plugins])
    lat.add_argument('--seconds', type=float, default=5.0)
    lat.add_argument('--size', type=int, default=12, help='ddsperf KS payload bytes (>= 12)')
    args = parser.parse_args(argv)

    plugin_dir = find_plugin_dir(args.plugin_dir)
    if args.command == 'check':
        problems = prerequisites(args.python, args.plugin_dir)
        print('\n'.join(f'missing: {p}' for p in problems) if problems else f'ready (plugins in {plugin_dir})')
        return 1 if problems else 0
    if plugin_dir is None:
        print(f'no DDS Security plugins in {args.plugin_dir or PLUGIN_DIR_GLOB}: see `secure_dds.py check`',
              file=sys.stderr)
        return 1
    if args.command == 'pki':
        identities = [_parse_identity(text) for text in args.identity] or [
            node_identity('talker', publish=['rt/chatter']), node_identity('listener', subscribe=['rt/chatter'])]
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
    problems = prerequisites(args.python, plugin_dir)
    if problems:
        print('\n'.join(f'missing: {p}' for p in problems), file=sys.stderr)
        return 1
    result = demo(args.python, args.seconds, plugin_dir, keep=args.keep, domain_id=args.domain_id)
    _print_summary(result)
    print(json.dumps(result))
    return 0 if result['ok'] else 1


def _parse_identity(text: str) -> Identity:
    """'NAME:pub=T1,T2:sub=T3' (DDS topic names, e.g. rt/chatter; '*' matches any), plus what every node uses."""
    name, *parts = text.split(':')
    if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', name):
        raise SystemExit(f'--identity {text!r}: NAME must be letters, digits and _')
    topics: dict[str, list[str]] = {'pub': [], 'sub': []}
    for part in parts:
        kind, _, names = part.partition('=')
        if kind not in topics:
            raise SystemExit(f"--identity {text!r}: expected NAME:pub=T1,T2:sub=T3, got {part!r}")
        topics[kind] += [t for t in names.split(',') if t]
    return node_identity(name, topics['pub'], topics['sub'])


def _print_summary(result: dict) -> None:
    plain, secure = result['plain'], result['secure']
    p, c = plain['capture']['from_others'], secure['capture']['from_secure']
    payload, topic = PAYLOAD_TEXT.decode(), TOPIC_TEXT.decode()
    print(f"plain:  listener heard {plain['heard']} (first after {result['plain_first_sample_s']} s); "
          f"{p['messages']} RTPS messages captured, payload text in {seen_count(p['needles'][payload])}, "
          f"topic name in {seen_count(p['needles'][topic])}")
    print(f"secure: listener heard {secure['heard']} (first after {result['secure_first_sample_s']} s); "
          f"intruders heard {secure['intruders_heard']}")
    print(f"secure capture, from the {secure['capture']['secure_participants']} secured participants: "
          f"{c['messages']} RTPS messages, {c['srtps_protected']} SRTPS-protected, DATA in the clear "
          f"{c['plain_data_by_writer']}; payload text in {seen_count(c['needles'][payload])}, topic name in "
          f"{c['needles'][topic]['in_handshake']} handshake messages (permissions document) and "
          f"{c['needles'][topic]['elsewhere']} others")
    print('OK' if result['ok'] else 'FAILED')


if __name__ == '__main__':
    sys.exit(main())
