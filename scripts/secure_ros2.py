#!/usr/bin/env python3
"""DDS Security on the real ROS 2's Cyclone DDS: SROS2 keystores, the secure Python, the proof.

    python3 scripts/secure_ros2.py keystore DIR [--enclave /NAME:pub=T,..:sub=T,.. ...]
    python3 scripts/secure_ros2.py binding          build (once) the secure Python; prints its path
    sudo python3 scripts/secure_ros2.py demo [--seconds 3] [--keep DIR]   the proof (last line: JSON)

ROS 2 Jazzy's Cyclone DDS (0.10.5) is built with OpenSSL: its DDS Security plugins
(libdds_security_{auth,ac,crypto}.so) sit next to its libddsc. Two kinds of node use them:

- rclpy nodes, as SROS2 does: ROS_SECURITY_ENABLE=true, ROS_SECURITY_STRATEGY=Enforce,
  ROS_SECURITY_KEYSTORE=DIR and ``--ros-args --enclave /NAME`` (or ROS_SECURITY_ENCLAVE_OVERRIDE);
  rcl finds DIR/enclaves/NAME, rmw_cyclonedds_cpp hands its six files to Cyclone. ``keystore``
  writes that layout with openssl (``ros2 security``, i.e. sros2, is not needed).
- our ROS-free runtime, with the Python binding ``cyclonedds`` 0.10.5 built from its PyPI sdist
  against that libddsc (``binding``; cached in .ros2/ keyed by what it was built from) and the
  enclave's files named in CYCLONEDDS_URI (dds_security_documents.sros2_enclave_xml).

``demo`` builds a keystore and a foreign one (other CAs), two network namespaces alice and bob
(dcdrl_ros.netns.Testbed) and runs DC-DRL's talker and listener:

1. without security, rclpy talker (alice) and listener (bob), with a raw capture on alice's
   interface: it must show the payload text and the topic name (so it could see a leak);
2. with security, each node with its own enclave: an rclpy talker on /chatter and a ROS-free talker
   on /chatter_ros_free in alice; in bob an rclpy and a ROS-free listener of /chatter and an rclpy
   listener of /chatter_ros_free must hear their talker (rclpy -> rclpy, rclpy -> ROS-free,
   ROS-free -> rclpy); three rclpy intruders in bob must hear nothing: one without security, one
   whose enclave /listener comes from the foreign keystore, one whose grant does not allow reading
   /chatter; the secured participants must not send the payload text or the topic name in the clear.

The orchestration needs the standard library, openssl, ip, tc and root; the nodes need the ROS 2.
Everything it creates (keys, namespaces, processes) is deleted at the end, also after errors.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
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
import dds_certificates  # noqa: E402  (the test PKI: identities, CAs, certificates, signing)
import dds_security_documents  # noqa: E402  (governance, permissions, the enclave XML)
import secure_dds  # noqa: E402  (the ROS-free node runner and proof)
from dds_certificates import Identity  # noqa: E402
from rtps_capture import analyse_pcap, plain_capture_shows_text, secure_capture_is_clean, seen_count, start_capture  # noqa: E402  (this folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'src' / 'dcdrl_ros'))
from dcdrl_ros import ros2_install  # noqa: E402  (which ROS 2, its environment)

BINDING = 'cyclonedds==0.10.5'       # the Python binding of the Cyclone release in Jazzy
CACHE = ROOT / '.ros2'
SECURITY_PLUGINS = dds_security_documents.PLUGIN_NAMES


# ------------------------------------------------------------------------------- the ROS 2's Cyclone
def cyclone_home(env: dict[str, str]) -> Path:
    """The install prefix of the Cyclone DDS that a sourced ROS 2 environment ENV uses: the one
    holding lib/libddsc.so, the three security plugins and include/dds/dds.h (to build against)."""
    folders = [p for p in env.get('LD_LIBRARY_PATH', '').split(os.pathsep) if p]
    folders += [os.path.join(p, 'lib') for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    looked = []
    for folder in dict.fromkeys(folders):
        lib = Path(folder)
        if not (lib / 'libddsc.so').exists():
            continue
        looked.append(str(lib))
        if all((lib / name).exists() for name in SECURITY_PLUGINS) and (lib.parent / 'include/dds/dds.h').is_file():
            return lib.parent
    raise RuntimeError('no Cyclone DDS with security plugins (libdds_security_{auth,ac,crypto}.so) and headers in '
                       f'this ROS 2 (libddsc.so found in: {looked or "none"})')


def binding_key(home: Path, python: str) -> str:
    """What the binding is built from: its version, the Python (version and ABI), the libddsc and where
    it is (the binding keeps that path)."""
    digest = hashlib.sha256(f'{BINDING}\0{home.resolve()}\0'.encode())
    digest.update(subprocess.run([python, '-c', 'import sys, sysconfig; print(sys.version, '
                                  'sysconfig.get_config_var("SOABI"), sysconfig.get_paths()["purelib"])'],
                                 capture_output=True, text=True, timeout=60, check=True).stdout.encode())
    for name in ('lib/libddsc.so', 'include/dds/features.h'):
        digest.update((home / name).resolve().read_bytes())
    return digest.hexdigest()[:16]


def secure_python(home: Path, python: str = sys.executable, cache: Path = CACHE, timeout: float = 600,
                  keep_s: float = 1800) -> Path:
    """A Python whose ``cyclonedds`` is the 0.10.5 binding built against HOME's libddsc, seeing
    PYTHON's packages (numpy, torch, ...) behind it; built once into CACHE/cyclonedds-py-<key>.

    A venv whose site-packages holds only the binding, plus a .pth that appends PYTHON's
    site-packages: the binding shadows PYTHON's own ``cyclonedds`` (the PyPI 11.x wheel, without
    security). Safe for several runs at once (a lock; the folder is complete once ``built`` exists).
    Builds for other keys are removed once unused for KEEP_S seconds.
    """
    key = binding_key(home, python)
    base = cache / f'cyclonedds-py-{key}'
    executable = base / 'bin' / 'python'
    if (base / 'built').is_file():
        os.utime(base)
        return executable
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / 'cyclonedds-py.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / 'built').is_file():
            return executable
        for old in cache.glob('cyclonedds-py-*'):
            if old != base and time.time() - old.stat().st_mtime > keep_s:
                shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
        _run([python, '-m', 'venv', '--without-pip', str(base)], timeout)
        site = Path(subprocess.run([str(executable), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                                   capture_output=True, text=True, timeout=60, check=True).stdout.strip())
        behind = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                                capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        (site / 'python_packages_behind.pth').write_text(f'import site; site.addsitedir({behind!r})\n')
        # --no-binary: the PyPI wheels of 0.10.x bundle a libddsc without security; build the sdist.
        # --no-cache-dir: pip's wheel cache is keyed by the sdist only, not by the libddsc built against.
        _run([python, '-m', 'pip', 'install', '-q', '--no-cache-dir', '--no-deps', '--no-binary', 'cyclonedds',
              '--target', str(site), BINDING], timeout, CYCLONEDDS_HOME=str(home))
        problem = secure_dds.secure_python_problem(str(executable))
        if problem:
            raise RuntimeError(f'the binding built in {base} is not usable: {problem}')
        (base / 'built').write_text(f'{BINDING} against {home}\n')
    return executable


def _run(argv: Sequence[str], timeout: float, **env: str) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                           f'{result.stderr[-3000:]}')


# ------------------------------------------------------------------------------- SROS2 keystore
def enclave_identity(enclave: str, publish: Sequence[str] = (), subscribe: Sequence[str] = ()) -> Identity:
    """The identity of enclave /NAME: its certificate's subject is CN=/NAME as SROS2 makes it; its grant
    allows the topics listed plus what every node uses (dds_certificates.NODE_PUBLISH/NODE_SUBSCRIBE)."""
    if not re.fullmatch(r'(/[A-Za-z][A-Za-z0-9_]*)+', enclave):
        raise ValueError(f'enclave {enclave!r} must look like /name or /name/name (letters, digits, _)')
    return dds_certificates.node_identity(enclave, publish, subscribe, common_name=enclave)


def make_keystore(keystore: Path, enclaves: Sequence[Identity], domain_id: int) -> dict[str, Path]:
    """Writes an SROS2 keystore with openssl: public/ (the two CA certificates), private/ (their keys),
    enclaves/governance.p7s and enclaves/NAME/ per enclave with the six files rcl and rmw_cyclonedds_cpp
    read (identity_ca.cert.pem, cert.pem, key.pem, permissions_ca.cert.pem, governance.p7s,
    permissions.p7s; plus permissions.xml). Returns {enclave name: its folder}."""
    private, public, top = keystore / 'private', keystore / 'public', keystore / 'enclaves'
    for folder in (private, public, top):
        folder.mkdir(parents=True, exist_ok=True)
    os.chmod(private, 0o700)
    for stem, common_name in (('identity_ca', 'DC-DRL identity CA'), ('permissions_ca', 'DC-DRL permissions CA')):
        dds_certificates.make_ca(private, stem, common_name)
        shutil.copy(private / f'{stem}.pem', public / f'{stem}.cert.pem')
    (top / 'governance.xml').write_text(dds_security_documents.governance_xml(domain_id))
    dds_certificates.sign(top, 'governance', str(private / 'permissions_ca'))
    shared = {'identity_ca.cert.pem': public, 'permissions_ca.cert.pem': public, 'governance.p7s': top}
    made = {'enclave.pem': 'cert.pem', 'enclave.key': 'key.pem', 'enclave_permissions.xml': 'permissions.xml',
            'enclave_permissions.p7s': 'permissions.p7s'}
    folders = {}
    for identity in enclaves:
        folder = top / identity.name.lstrip('/')
        folder.mkdir(parents=True)
        os.chmod(folder, 0o700)  # its private key
        dds_certificates.make_certificate(private, 'identity_ca', identity, 'enclave')
        (private / 'enclave_permissions.xml').write_text(dds_security_documents.permissions_xml(identity, domain_id))
        dds_certificates.sign(private, 'enclave_permissions')
        for source, target in made.items():
            shutil.move(str(private / source), folder / target)
        (private / 'enclave.csr').unlink()
        for name, origin in shared.items():
            shutil.copy(origin / name, folder / name)
        folders[identity.name] = folder
    return folders


def rclpy_environment(ros2: ros2_install.Ros2) -> dict[str, str]:
    """The environment of rclpy nodes of this checkout: the ROS 2 sourced, dcdrl_ros from the source tree
    (its talker and listener need nothing else; no colcon build of the workspace)."""
    env = ros2.environment()
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT / 'src' / 'dcdrl_ros'), env.get('PYTHONPATH')) if p)
    return env


def security_env(keystore: Path, enclave: str | None = None) -> dict[str, str]:
    """The environment of an rclpy node that must run secured (it refuses to start without its files)."""
    env = {'ROS_SECURITY_ENABLE': 'true', 'ROS_SECURITY_STRATEGY': 'Enforce', 'ROS_SECURITY_KEYSTORE': str(keystore)}
    if enclave:
        env['ROS_SECURITY_ENCLAVE_OVERRIDE'] = enclave
    return env


# ------------------------------------------------------------------------------- the proof
PAYLOAD_TEXT, TOPIC_TEXT = secure_dds.PAYLOAD_TEXT, secure_dds.TOPIC_TEXT
INTRUDERS = secure_dds.INTRUDERS
LISTENERS = ('listener', 'ros_free_listener', 'listener_of_ros_free')
# How a node learns that its grant does not allow reading rt/chatter: Cyclone refuses to create the
# topic; our runtime shows Cyclone's return code, rmw_cyclonedds_cpp only says that it failed.
READ_REFUSALS = ('NOT_ALLOWED_BY_SECURITY', 'failed to create topic [rt/chatter]')


def demo(ros_env: dict[str, str], seconds: float, domain_id: int = dds_security_documents.DOMAIN_ID,
         timeout: float = 60.0, keep: str | None = None) -> dict:
    """The proof (module docstring). ROS_ENV: the environment of the rclpy nodes (rclpy_environment, or a
    ROS 2 and this workspace's install sourced); KEEP: a directory that gets the keystores and the captures."""
    from dcdrl_ros.netns import Testbed
    home = cyclone_home(ros_env)
    ros_free_python, plugin_dir = str(secure_python(home)), str(home / 'lib')
    ros_python = shutil.which('python3', path=ros_env.get('PATH', ''))
    result: dict[str, Any] = {'cyclone_home': str(home), 'ros_free_python': ros_free_python}
    with tempfile.TemporaryDirectory(prefix='dcdrl-keystore-') as tmp:
        work = Path(keep) if keep else Path(tmp)
        keystore, foreign = work / 'keystore', work / 'foreign_keystore'
        enclaves = make_keystore(keystore, [
            enclave_identity('/talker', publish=['rt/chatter']),
            enclave_identity('/listener', subscribe=['rt/chatter', 'rt/chatter_ros_free']),
            enclave_identity('/ros_free_talker', publish=['rt/chatter_ros_free']),
            enclave_identity('/ros_free_listener', subscribe=['rt/chatter']),
            enclave_identity('/unpermitted')], domain_id)  # may not read rt/chatter
        # the intruder's enclave has the same name and grant, signed by CAs of its own
        make_keystore(foreign, [enclave_identity('/listener', subscribe=['rt/chatter'])], domain_id)
        with Testbed(hosts=('alice', 'bob')) as bed:
            def rclpy_node(host: str, executable: str, name: str, topic: str = 'chatter',
                           enclave: str | None = None, store: Path = keystore) -> Any:
                env = bed.dds_env(host, domain_id, base=ros_env, DCDRL_BACKEND='rclpy')
                argv = [ros_python, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', executable, '--ros-args',
                        '-r', f'__node:={name}', '-p', f'topic:={topic}']
                if enclave:
                    env.update(security_env(store))
                    argv += ['--enclave', enclave]
                return bed.run(host, argv, env)

            def ros_free_node(host: str, executable: str, name: str, topic: str, enclave: str) -> Any:
                security = dds_security_documents.sros2_enclave_xml(enclaves[enclave], plugin_dir)
                env = bed.dds_env(host, domain_id, DCDRL_BACKEND='cyclone',
                                  PYTHONPATH=os.pathsep.join(secure_dds.NODE_PATHS), CYCLONEDDS_URI=security)
                return bed.run(host, [ros_free_python, str(secure_dds.SCRIPT), 'node', 'dcdrl_ros', executable,
                                      '--ros-args', '-r', f'__node:={name}', '-p', f'topic:={topic}'], env)

            # 1. plaintext control: the capture must see the payload and the topic name
            path = str(work / 'plain.pcap')
            cap = start_capture(bed, 'alice', path, timeout)
            nodes = {'talker': rclpy_node('alice', 'talker', 'talker'),
                     'listener': rclpy_node('bob', 'listener', 'listener')}
            started = time.monotonic()
            nodes['listener'].wait_for_line(secure_dds.HEARD, timeout)
            result['plain_first_sample_s'] = round(time.monotonic() - started, 2)
            secure_dds.run_for(seconds, nodes, cap)
            result['plain'] = {'heard': len(secure_dds.heard_texts(nodes['listener'].lines)),
                               'capture': analyse_pcap(path, [PAYLOAD_TEXT, TOPIC_TEXT])}

            # 2. secured, both backends both ways, and three intruders beside the listeners
            path = str(work / 'secure.pcap')
            cap = start_capture(bed, 'alice', path, timeout)
            nodes = {
                'talker': rclpy_node('alice', 'talker', 'talker', enclave='/talker'),
                'ros_free_talker': ros_free_node('alice', 'talker', 'ros_free_talker', 'chatter_ros_free',
                                                 '/ros_free_talker'),
                'listener': rclpy_node('bob', 'listener', 'listener', enclave='/listener'),
                'ros_free_listener': ros_free_node('bob', 'listener', 'ros_free_listener', 'chatter',
                                                   '/ros_free_listener'),
                'listener_of_ros_free': rclpy_node('bob', 'listener', 'listener_of_ros_free', 'chatter_ros_free',
                                                   enclave='/listener'),
                'no_security': rclpy_node('bob', 'listener', 'intruder_plain'),
                'foreign_ca': rclpy_node('bob', 'listener', 'intruder_forged', enclave='/listener', store=foreign),
                'not_permitted': rclpy_node('bob', 'listener', 'intruder_unpermitted', enclave='/unpermitted')}
            started = time.monotonic()
            first = {}
            for name in LISTENERS:
                nodes[name].wait_for_line(secure_dds.HEARD, timeout)
                first[name] = round(time.monotonic() - started, 2)
            result['secure_first_sample_s'] = first
            secure_dds.run_for(seconds, nodes, cap)
            heard = {name: secure_dds.heard_texts(nodes[name].lines) for name in LISTENERS}
            result['secure'] = {
                'heard': {name: len(texts) for name, texts in heard.items()},
                'all_from_talkers': all(re.fullmatch(r'Hello World: \d+', text)
                                        for texts in heard.values() for text in texts),
                'intruders_started': {k: any('listener started' in line for line in nodes[k].lines) for k in INTRUDERS},
                'intruders_heard': {k: len(secure_dds.heard_texts(nodes[k].lines)) for k in INTRUDERS},
                'not_permitted_refusal': _first(nodes['not_permitted'].lines, *READ_REFUSALS),
                'foreign_ca_refusals_logged': [line.strip()[:300] for name in ('talker', *LISTENERS)
                                               for line in nodes[name].lines if 'Certificate not valid' in line][:3],
                'capture': analyse_pcap(path, [PAYLOAD_TEXT, TOPIC_TEXT])}
    result['ok'] = _verdict(result)
    return result


def _first(lines: Sequence[str], *marks: str) -> str | None:
    return next((line.strip()[:300] for line in lines if any(mark in line for mark in marks)), None)


def _verdict(result: dict) -> bool:
    """Plain run: the capture sees payload and topic name. Secured run: every listener hears its talker
    (rclpy -> rclpy, rclpy -> ROS-free, ROS-free -> rclpy), no intruder hears anything, the capture is clean."""
    plain, secure = result['plain'], result['secure']
    return (plain['heard'] > 0 and plain_capture_shows_text(plain['capture'])
            and all(secure['heard'].values()) and secure['all_from_talkers']
            and not any(secure['intruders_heard'].values()) and secure['not_permitted_refusal'] is not None
            and secure_capture_is_clean(secure['capture'], PAYLOAD_TEXT.decode(), TOPIC_TEXT.decode()))


def _summary(result: dict) -> str:
    plain, secure = result['plain'], result['secure']
    clear = secure['capture']['from_secure']
    return '\n'.join([
        f"plain:  rclpy listener heard {plain['heard']} (first after {result['plain_first_sample_s']} s); payload text "
        f"in {seen_count(plain['capture']['from_others']['needles'][PAYLOAD_TEXT.decode()])} packets",
        f"secure: heard {secure['heard']} (first after {result['secure_first_sample_s']} s); intruders heard "
        f"{secure['intruders_heard']}",
        f"secure capture, from the {secure['capture']['secure_participants']} secured participants: "
        f"{clear['messages']} RTPS messages, {clear['srtps_protected']} SRTPS-protected, DATA in the clear "
        f"{clear['plain_data_by_writer']}; payload text in {seen_count(clear['needles'][PAYLOAD_TEXT.decode()])}",
        'OK' if result['ok'] else 'FAILED'])


# ------------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    store = sub.add_parser('keystore', help='write an SROS2 keystore with openssl')
    store.add_argument('directory')
    store.add_argument('--enclave', action='append', default=[], metavar='/NAME:pub=T,..:sub=T,..',
                       help="an enclave and its topics (DDS names, e.g. rt/chatter; what every node uses is added); "
                            "default: /talker and /listener of /chatter")
    store.add_argument('--domain-id', type=int, default=dds_security_documents.DOMAIN_ID)
    sub.add_parser('binding', help="build (once) the secure Python against the ROS 2's Cyclone; print its path "
                                   'and the plugin folder')
    run = sub.add_parser('demo', help='the two-namespace proof; last line is JSON')
    run.add_argument('--seconds', type=float, default=3.0, help='measuring window per phase (default 3)')
    run.add_argument('--domain-id', type=int, default=dds_security_documents.DOMAIN_ID)
    run.add_argument('--keep', metavar='DIR', help='keep the keystores and the captures (pcap) in DIR')
    args = parser.parse_args(argv)

    if args.command == 'keystore':
        enclaves = [_parse_enclave(text) for text in args.enclave] or [
            enclave_identity('/talker', publish=['rt/chatter']),
            enclave_identity('/listener', subscribe=['rt/chatter'])]
        for name, folder in make_keystore(Path(args.directory), enclaves, args.domain_id).items():
            print(f'{name}: {folder}')
        return 0
    ros2, why = ros2_install.find()
    if ros2 is None:
        print(why, file=sys.stderr)
        return 1
    if args.command == 'binding':
        home = cyclone_home(ros2.environment())
        print(f'python: {secure_python(home)}\nplugins: {home / "lib"}')
        return 0
    problems = secure_dds.host_problems()
    if problems:
        print('\n'.join(f'missing: {p}' for p in problems), file=sys.stderr)
        return 1
    result = demo(rclpy_environment(ros2), args.seconds, args.domain_id, keep=args.keep)
    print(_summary(result))
    print(json.dumps(result))
    return 0 if result['ok'] else 1


def _parse_enclave(text: str) -> Identity:
    """'/NAME:pub=T1,T2:sub=T3' (DDS topic names)."""
    enclave, *parts = text.split(':')
    topics: dict[str, list[str]] = {'pub': [], 'sub': []}
    for part in parts:
        kind, _, names = part.partition('=')
        if kind not in topics:
            raise SystemExit(f"--enclave {text!r}: expected /NAME:pub=T1,T2:sub=T3, got {part!r}")
        topics[kind] += [t for t in names.split(',') if t]
    try:
        return enclave_identity(enclave, topics['pub'], topics['sub'])
    except ValueError as error:
        raise SystemExit(f'--enclave {text!r}: {error}') from None


if __name__ == '__main__':
    sys.exit(main())
