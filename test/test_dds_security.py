"""DDS Security (scripts/secure_dds.py, dds_certificates.py, dds_security_documents.py, secure_ros2.py, rtps_capture.py;
docs/security.md).

The PKI, keystore, XML and capture-analysis tests need only ``openssl``. The proofs run on the real
ROS 2's Cyclone DDS 0.10.5 and its security plugins (fixture ``ros2``; they skip without a ROS 2,
and fail instead under DCDRL_REQUIRE_ROS2=1, as in CI) between two network namespaces (root):
ROS-free nodes secured with the binding built against that Cyclone (cached in .ros2/), and rclpy
nodes with SROS2 enclaves beside ROS-free ones in one secured graph.
"""
import importlib.util
import json
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dcdrl_ros import ros2_install
from dcdrl_ros.testing import ChildProcess, fresh_domain_id

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / 'scripts'
TIMEOUT = 60.0


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name; the scripts import each other
    spec.loader.exec_module(module)
    return module


rtps_capture = _load('rtps_capture')
dds_certificates = _load('dds_certificates')
dds_security_documents = _load('dds_security_documents')
secure_dds = _load('secure_dds')
secure_ros2 = _load('secure_ros2')

needs_openssl = pytest.mark.skipif(shutil.which('openssl') is None, reason='openssl not found')
PLUGIN_DIR = '/opt/plugins'  # only written into the XML by these tests, never loaded


def _openssl(*args, cwd):
    return subprocess.run(['openssl', *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp('pki')
    identities = [dds_certificates.Identity('talker', publish=['rt/chatter']),
                  dds_certificates.Identity('listener', subscribe=['rt/chatter']),
                  dds_certificates.Identity('forged', subscribe=['rt/chatter'], foreign_ca=True)]
    configs = dds_security_documents.make_pki(directory, identities, PLUGIN_DIR)
    return directory, configs


@needs_openssl
def test_certificates_chain_to_their_own_identity_ca_only(pki):
    directory, _ = pki
    assert _openssl('verify', '-CAfile', 'identity_ca.pem', 'talker.pem', cwd=directory).returncode == 0
    assert _openssl('verify', '-CAfile', 'identity_ca.pem', 'listener.pem', cwd=directory).returncode == 0
    assert _openssl('verify', '-CAfile', 'identity_ca.pem', 'forged.pem', cwd=directory).returncode != 0
    assert _openssl('verify', '-CAfile', 'foreign_identity_ca.pem', 'forged.pem', cwd=directory).returncode == 0
    assert oct(directory.stat().st_mode & 0o777) == oct(0o700)  # private keys inside


@needs_openssl
def test_signed_documents_verify_and_tampering_is_detected(pki, tmp_path):
    directory, _ = pki
    for stem in ('governance', 'talker_permissions', 'listener_permissions'):
        result = _openssl('smime', '-verify', '-in', f'{stem}.p7s', '-CAfile', 'permissions_ca.pem', cwd=directory)
        assert result.returncode == 0, result.stderr
        assert (directory / f'{stem}.xml').read_text().strip() in result.stdout.replace('\r\n', '\n')
    # the intruder's permissions are signed by its own CA, not by ours
    assert _openssl('smime', '-verify', '-in', 'forged_permissions.p7s', '-CAfile', 'permissions_ca.pem',
                    cwd=directory).returncode != 0
    tampered = tmp_path / 'tampered.p7s'
    tampered.write_text((directory / 'listener_permissions.p7s').read_text().replace(
        '<subscribe><topics><topic>rt/chatter', '<subscribe><topics><topic>rt/secrets'))
    assert 'rt/secrets' in tampered.read_text()
    assert _openssl('smime', '-verify', '-in', str(tampered), '-CAfile', 'permissions_ca.pem',
                    cwd=directory).returncode != 0


@needs_openssl
def test_permissions_grant_matches_certificate_subject_and_topics(pki):
    directory, _ = pki
    subject = _openssl('x509', '-in', 'listener.pem', '-noout', '-subject', '-nameopt', 'RFC2253',
                       cwd=directory).stdout.strip().removeprefix('subject=')
    grant = ET.fromstring((directory / 'listener_permissions.xml').read_text()).find('permissions/grant')
    assert set(grant.findtext('subject_name').split(',')) == set(subject.split(','))
    assert [t.text for t in grant.findall('allow_rule/subscribe/topics/topic')] == ['rt/chatter']
    assert grant.findall('allow_rule/publish') == []
    assert grant.findtext('default') == 'DENY'
    rule = ET.fromstring((directory / 'governance.xml').read_text()).find('domain_access_rules/domain_rule')
    assert rule.findtext('allow_unauthenticated_participants') == 'false'
    assert rule.findtext('rtps_protection_kind') == 'ENCRYPT'
    assert rule.findtext('topic_access_rules/topic_rule/data_protection_kind') == 'ENCRYPT'


@needs_openssl
def test_cyclone_security_xml_names_existing_files_and_the_plugins(pki):
    directory, configs = pki
    for name in ('talker', 'forged'):
        security = ET.fromstring(configs[name]).find('Domain/Security')
        files = [e.text.removeprefix('file:') for e in security.iter() if e.text and e.text.startswith('file:')]
        assert len(files) == 6 and all(Path(f).is_file() for f in files), files
        libraries = [e.get('path') for e in security.iter('Library')]
        assert libraries == [f'{PLUGIN_DIR}/libdds_security_{k}.so' for k in ('auth', 'ac', 'crypto')]
        assert (directory / f'{name}_security.xml').read_text().strip() == configs[name]
    forged = ET.fromstring(configs['forged']).find('Domain/Security')
    assert forged.findtext('Authentication/IdentityCA').endswith('/foreign_identity_ca.pem')


def test_sros2_enclave_xml_uses_the_enclave_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing cert.pem, key.pem'):
        (tmp_path / 'identity_ca.cert.pem').write_text('x')
        dds_security_documents.sros2_enclave_xml(tmp_path, PLUGIN_DIR)
    for name in dds_security_documents.SROS2_ENCLAVE_FILES:
        (tmp_path / name).write_text('x')
    security = ET.fromstring(dds_security_documents.sros2_enclave_xml(tmp_path, PLUGIN_DIR)).find('Domain/Security')
    assert security.findtext('Authentication/IdentityCertificate') == f'file:{tmp_path}/cert.pem'
    assert security.findtext('Authentication/PrivateKey') == f'file:{tmp_path}/key.pem'
    assert security.findtext('AccessControl/Permissions') == f'file:{tmp_path}/permissions.p7s'
    assert security.find('Cryptographic/Library').get('path') == f'{PLUGIN_DIR}/libdds_security_crypto.so'


# --------------------------------------------------------------------------- capture analysis
def _rtps(prefix: bytes, *submessages: bytes) -> bytes:
    return b'RTPS\x02\x01\x01\x10' + prefix + b''.join(submessages)


def _submessage(kind: int, body: bytes) -> bytes:
    return struct.pack('<BBH', kind, 0x01, len(body)) + body


def _data(writer: bytes, payload: bytes) -> bytes:
    return _submessage(0x15, struct.pack('<HH', 0, 16) + b'\x00' * 4 + writer + struct.pack('<iI', 0, 1) + payload)


def _dispose(writer: bytes, guid: bytes) -> bytes:
    """What Cyclone sends on the plain discovery writer when an endpoint is deleted."""
    inline = struct.pack('<HH', 0x71, 4) + b'\x00\x00\x00\x03' + struct.pack('<HH', 1, 0)
    payload = b'\x00\x03\x00\x00' + struct.pack('<HH', 0x5A, 16) + guid + struct.pack('<HH', 1, 0)
    body = struct.pack('<HH', 0, 16) + b'\x00' * 4 + writer + struct.pack('<iI', 0, 1) + inline + payload
    return struct.pack('<BBH', 0x15, 0x03, len(body)) + body


def _pcap(path: Path, payloads: list) -> None:
    frames = []
    for payload in payloads:
        ip = bytes([0x45, 0]) + struct.pack('>H', 28 + len(payload)) + b'\x00' * 5 + bytes([17]) + b'\x00' * 10
        udp = struct.pack('>HHHH', 7410, 7411, 8 + len(payload), 0)
        frames.append(b'\xff' * 12 + b'\x08\x00' + ip + udp + payload)
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for frame in frames:
            f.write(struct.pack('<IIII', 0, 0, len(frame), len(frame)) + frame)


def test_analyse_pcap_splits_senders_and_finds_clear_text(tmp_path):
    secure, plain = b'S' * 12, b'P' * 12
    spdp, handshake, user_writer, sedp_sub = (bytes.fromhex(h)
                                              for h in ('000100c2', '000201c3', '00000403', '000004c2'))
    path = tmp_path / 'capture.pcap'
    _pcap(path, [
        _rtps(secure, _data(spdp, b'...DDS:Auth:PKI-DH:1.0...')),                 # secured announcement
        _rtps(secure, _data(handshake, b'<topic>rt/chatter</topic>')),            # permissions in handshake
        _rtps(secure, _submessage(0x33, b'\x00' * 8), _submessage(0x30, b'\x8a' * 40), _submessage(0x34, b'')),
        _rtps(secure, _dispose(sedp_sub, secure + b'\x00\x00\x04\x04')),          # reader deleted: GUID only
        _rtps(plain, _data(spdp, b'plain participant')),
        _rtps(plain, _data(user_writer, b'Hello World: 1 on rt/chatter')),
        _rtps(plain, _data(sedp_sub, b'\x00\x03\x00\x00...rt/chatter...')),          # a plain reader announcement
        b'not rtps at all',
    ])
    stats = rtps_capture.analyse_pcap(str(path), [b'Hello World', b'rt/chatter'])
    assert stats['udp_packets'] == 8 and stats['rtps_messages'] == 7
    assert (stats['secure_participants'], stats['other_participants']) == (1, 1)
    mine, others = stats['from_secure'], stats['from_others']
    assert mine['srtps_protected'] == 1
    assert mine['plain_data_by_writer'] == {'participant_announcement': 1, 'authentication_handshake': 1,
                                            'endpoint_dispose': 1}
    assert mine['needles'] == {'Hello World': {'in_handshake': 0, 'elsewhere': 0},
                               'rt/chatter': {'in_handshake': 1, 'elsewhere': 0}}
    assert others['plain_data_by_writer'] == {'participant_announcement': 1, 'other:00000403': 1,
                                              'other:000004c2': 1}
    assert others['needles']['Hello World'] == {'in_handshake': 0, 'elsewhere': 1}
    assert others['needles']['rt/chatter'] == {'in_handshake': 0, 'elsewhere': 2}
    assert rtps_capture.plain_capture_shows_text(stats)
    # clean: what the secured participants sent; but one secured participant alone proves nothing
    assert not rtps_capture.secure_capture_is_clean(stats, 'Hello World', 'rt/chatter')
    assert rtps_capture.secure_capture_is_clean(dict(stats, secure_participants=2), 'Hello World', 'rt/chatter')
    mine['plain_data_by_writer']['other:00000403'] = 1   # a plain user DATA from a secured participant
    assert not rtps_capture.secure_capture_is_clean(dict(stats, secure_participants=2), 'Hello World', 'rt/chatter')


def test_identity_option_and_missing_secure_python_are_explained(tmp_path):
    identity = secure_dds._parse_identity('camera:pub=rt/images,ros_discovery_info:sub=rt/policy')
    # what every node uses is added once (a grant without it stops the node at start)
    assert identity.publish == ['rt/images', *dds_certificates.NODE_PUBLISH]
    assert identity.subscribe == ['rt/policy', *dds_certificates.NODE_SUBSCRIBE]
    with pytest.raises(SystemExit, match='NAME must be'):
        secure_dds._parse_identity('1bad:pub=rt/x')
    with pytest.raises(SystemExit, match='expected NAME:pub='):
        secure_dds._parse_identity('camera:publish=rt/x')
    problem = secure_dds.secure_python_problem(str(tmp_path / 'no-python'))
    assert problem and 'cannot run' in problem
    problem = secure_dds.secure_python_problem(sys.executable)  # the project venv: PyPI wheel
    assert problem is not None


# --------------------------------------------------------------------------- SROS2 keystores (openssl only)
def _subject(cert: Path) -> set:
    text = _openssl('x509', '-in', str(cert), '-noout', '-subject', '-nameopt', 'RFC2253', cwd=cert.parent).stdout
    return set(text.strip().removeprefix('subject=').split(','))


@needs_openssl
def test_keystore_has_the_sros2_layout_and_trusts_only_its_own_cas(tmp_path):
    talker = secure_ros2.enclave_identity('/talker', publish=['rt/chatter'])
    learner = secure_ros2.enclave_identity('/dcdrl/learner', subscribe=['rt/dcdrl/replay/batches'])
    enclaves = secure_ros2.make_keystore(tmp_path / 'keystore', [talker, learner], 42)
    other = secure_ros2.make_keystore(tmp_path / 'other', [talker], 42)['/talker']
    assert enclaves == {'/talker': tmp_path / 'keystore/enclaves/talker',
                        '/dcdrl/learner': tmp_path / 'keystore/enclaves/dcdrl/learner'}  # where rcl looks
    for folder in enclaves.values():
        assert all((folder / name).is_file() for name in dds_security_documents.SROS2_ENCLAVE_FILES)
        assert oct(folder.stat().st_mode & 0o777) == oct(0o700)  # its private key
        assert _openssl('verify', '-CAfile', 'identity_ca.cert.pem', 'cert.pem', cwd=folder).returncode == 0
        for document in ('permissions.p7s', 'governance.p7s'):
            verified = _openssl('smime', '-verify', '-in', document, '-CAfile', 'permissions_ca.cert.pem', cwd=folder)
            assert verified.returncode == 0, verified.stderr
    assert oct((tmp_path / 'keystore/private').stat().st_mode & 0o777) == oct(0o700)  # the CA keys
    assert not list((tmp_path / 'keystore/public').glob('*key*'))
    # SROS2's subject: CN=<enclave>; the grant names exactly that subject
    assert _subject(enclaves['/talker'] / 'cert.pem') == {'CN=/talker', 'O=DC-DRL test'}
    grant = ET.fromstring((enclaves['/talker'] / 'permissions.xml').read_text()).find('permissions/grant')
    assert set(grant.findtext('subject_name').split(',')) == _subject(enclaves['/talker'] / 'cert.pem')
    assert grant.findtext('allow_rule/domains/id') == '42'
    published = [t.text for t in grant.findall('allow_rule/publish/topics/topic')]
    assert published == ['rt/chatter', *dds_certificates.NODE_PUBLISH]
    # another keystore's talker has the same subject but does not chain to our CA
    assert _subject(other / 'cert.pem') == _subject(enclaves['/talker'] / 'cert.pem')
    assert _openssl('verify', '-CAfile', str(enclaves['/talker'] / 'identity_ca.cert.pem'), 'cert.pem',
                    cwd=other).returncode != 0
    # a ROS-free node uses the same enclave folder
    enclave_xml = dds_security_documents.sros2_enclave_xml(enclaves['/talker'], PLUGIN_DIR)
    security = ET.fromstring(enclave_xml).find('Domain/Security')
    assert security.findtext('Authentication/IdentityCertificate') == f"file:{enclaves['/talker']}/cert.pem"


def test_enclave_names_are_checked():
    with pytest.raises(ValueError, match="must look like /name"):
        secure_ros2.enclave_identity('talker')
    assert secure_ros2._parse_enclave('/a/b:sub=rt/x').subscribe[0] == 'rt/x'
    with pytest.raises(SystemExit, match='expected /NAME:pub='):
        secure_ros2._parse_enclave('/a:publish=rt/x')
    with pytest.raises(SystemExit, match='must look like /name'):
        secure_ros2._parse_enclave('/1a:pub=rt/x')


def test_cyclone_home_is_the_prefix_with_plugins_and_headers(tmp_path):
    prefix = tmp_path / 'ros'
    (prefix / 'lib').mkdir(parents=True)
    (prefix / 'lib/libddsc.so').write_bytes(b'one')
    env = {'LD_LIBRARY_PATH': f"{tmp_path / 'elsewhere'}:{prefix / 'lib'}"}
    with pytest.raises(RuntimeError, match='no Cyclone DDS with security plugins.*found in: .*ros/lib'):
        secure_ros2.cyclone_home(env)
    for name in dds_security_documents.PLUGIN_NAMES:
        (prefix / 'lib' / name).write_bytes(b'')
    (prefix / 'include/dds').mkdir(parents=True)
    (prefix / 'include/dds/dds.h').write_text('')
    (prefix / 'include/dds/features.h').write_text('#define DDS_HAS_SECURITY 1\n')
    assert secure_ros2.cyclone_home(env) == prefix
    assert secure_ros2.cyclone_home({'AMENT_PREFIX_PATH': str(prefix)}) == prefix
    # the cached binding is keyed by the library it was built against
    key = secure_ros2.binding_key(prefix, sys.executable)
    assert secure_ros2.binding_key(prefix, sys.executable) == key
    (prefix / 'lib/libddsc.so').write_bytes(b'two')
    assert secure_ros2.binding_key(prefix, sys.executable) != key


# --------------------------------------------------------------------------- the proofs (real ROS 2)
@pytest.fixture(scope='module')
def namespaces():
    """Root, ip, tc, openssl and working network namespaces; else skip (fail under DCDRL_REQUIRE_ROS2=1)."""
    problems = secure_dds.host_problems()
    if problems:
        message = 'the DDS Security proofs need ' + '; '.join(problems)
        if ros2_install.required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope='module')
def ros2_cyclone(ros2):
    """(the ROS 2's Cyclone DDS prefix, a Python with cyclonedds 0.10.5 built against it); the binding is
    built from its PyPI sdist once and cached in .ros2/cyclonedds-py-<key> (about 5 s)."""
    home = secure_ros2.cyclone_home(ros2.environment())
    return home, str(secure_ros2.secure_python(home))


def _report(argv: list) -> dict:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.dds
@pytest.mark.slow
def test_secure_talker_listener_between_namespaces(namespaces, ros2_cyclone):
    """ROS-free talker and listener on the ROS 2's Cyclone 0.10.5 with its security plugins."""
    home, python = ros2_cyclone
    report = _report([sys.executable, str(SCRIPTS / 'secure_dds.py'), 'demo', '--python', python,
                      '--plugin-dir', str(home / 'lib'), '--seconds', '3', '--domain-id', str(fresh_domain_id())])
    plain, secure = report['plain'], report['secure']
    # without security, the capture sees what the talker sends (so it could see a leak)
    assert plain['heard'] > 0
    assert plain['capture']['from_others']['needles']['Hello World']['elsewhere'] > 0
    # with security: the permitted listener hears the talker, and only the talker
    assert secure['heard'] > 0 and secure['all_from_talker']
    # nobody else hears anything: no security, a certificate from another CA, no read permission
    assert secure['intruders_heard'] == {'no_security': 0, 'foreign_ca': 0, 'not_permitted': 0}
    assert any('NOT_ALLOWED_BY_SECURITY' in line for line in secure['intruder_errors']['not_permitted'])
    assert any('Certificate not valid' in line for line in secure['refusals_logged_by_talker_and_listener'])
    # the secured participants never put the payload on the wire in the clear
    mine = secure['capture']['from_secure']
    assert mine['needles']['Hello World'] == {'in_handshake': 0, 'elsewhere': 0}
    assert mine['needles']['rt/chatter']['elsewhere'] == 0
    assert mine['srtps_protected'] > 0
    assert set(mine['plain_data_by_writer']) <= {'participant_announcement', 'authentication_handshake', 'liveliness',
                                                 'endpoint_dispose'}
    assert report['ok'], json.dumps(report)[-3000:]


@pytest.mark.dds
@pytest.mark.slow
def test_rclpy_enclaves_and_ros_free_nodes_in_one_secured_graph(namespaces, ros2, ros2_cyclone):
    """rclpy nodes with SROS2 enclaves (keystore made with openssl) and ROS-free secured nodes, both ways."""
    report = _report([sys.executable, str(SCRIPTS / 'secure_ros2.py'), 'demo', '--seconds', '3',
                      '--domain-id', str(fresh_domain_id())])
    plain, secure = report['plain'], report['secure']
    assert plain['heard'] > 0 and rtps_capture.plain_capture_shows_text(plain['capture'])
    # rclpy -> rclpy, rclpy -> ROS-free, ROS-free -> rclpy, each pair on its own topic
    assert all(count > 0 for count in secure['heard'].values()), secure['heard']
    assert set(secure['heard']) == {'listener', 'ros_free_listener', 'listener_of_ros_free'}
    assert secure['all_from_talkers']
    # the intruders ran and heard nothing; the one without read permission could not even subscribe
    assert secure['intruders_heard'] == {'no_security': 0, 'foreign_ca': 0, 'not_permitted': 0}
    assert secure['intruders_started']['no_security'] and secure['intruders_started']['foreign_ca']
    assert 'rt/chatter' in secure['not_permitted_refusal']
    assert secure['foreign_ca_refusals_logged']
    capture = secure['capture']
    assert capture['secure_participants'] >= 5  # two talkers and three listeners at least
    assert capture['from_secure']['needles']['Hello World'] == {'in_handshake': 0, 'elsewhere': 0}
    assert rtps_capture.secure_capture_is_clean(capture, 'Hello World', 'rt/chatter')
    assert report['ok'], json.dumps(report)[-3000:]


@pytest.mark.dds
def test_enforce_starts_an_rclpy_node_only_with_its_enclave(ros2, tmp_path):
    """ROS_SECURITY_STRATEGY=Enforce: no enclave folder, no node; ROS_SECURITY_ENCLAVE_OVERRIDE picks one."""
    domain = fresh_domain_id()
    keystore = tmp_path / 'keystore'
    secure_ros2.make_keystore(keystore, [secure_ros2.enclave_identity('/talker', publish=['rt/chatter'])], domain)
    env = secure_ros2.rclpy_environment(ros2)
    env.update(secure_ros2.security_env(keystore), ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               DCDRL_BACKEND='rclpy')
    talker = [shutil.which('python3', path=env['PATH']), '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'talker']
    refused = subprocess.run([*talker, '--ros-args', '--enclave', '/nobody'], env=env, capture_output=True,
                             text=True, timeout=TIMEOUT)
    assert refused.returncode != 0
    assert f"SECURITY ERROR: directory '{keystore}/enclaves/nobody' does not exist" in refused.stderr
    env.update(secure_ros2.security_env(keystore, enclave='/talker'))  # wins over --enclave, as in rcl
    with ChildProcess([*talker, '--ros-args', '--enclave', '/nobody'], env=env) as node:
        node.wait_for_line(f'Found security directory: {keystore}/enclaves/talker', TIMEOUT)
        node.wait_for_line('talker started', TIMEOUT)
