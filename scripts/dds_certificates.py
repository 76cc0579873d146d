"""Test certificates for DDS Security with plain openssl: the participants' identities, self-signed CAs,
certificates signed by them, S/MIME-signed documents. Short-lived on purpose: for tests and demos."""
from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CERT_DAYS = 2                     # test certificates only: short-lived on purpose


@dataclass
class Identity:
    """One participant: its certificate's subject and the topics its permissions allow."""
    name: str
    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    foreign_ca: bool = False      # signed by a CA the others do not trust (an intruder)
    partitions: list[str] = field(default_factory=list)  # none listed: only the default partition
    common_name: str = ''         # default: NAME (an SROS2 enclave's is its path, CN=/talker)

    @property
    def subject(self) -> str:
        return f'CN={self.common_name or self.name},O=DC-DRL test'


# What every node uses besides its own topics, on either backend: the graph topic, /rosout (rclpy),
# /parameter_events and its parameter services (and rclpy's type-description service). A grant
# without them stops the node at start (DDS_RETCODE_NOT_ALLOWED_BY_SECURITY); SROS2 grants them too.
NODE_PUBLISH = ('ros_discovery_info', 'rt/rosout', 'rt/parameter_events', 'rr/*')
NODE_SUBSCRIBE = ('ros_discovery_info', 'rt/parameter_events', 'rq/*')


def node_identity(name: str, publish: Sequence[str] = (), subscribe: Sequence[str] = (), **options: Any) -> Identity:
    """A node's identity: its own topics (DDS names, e.g. rt/chatter) plus NODE_PUBLISH/NODE_SUBSCRIBE."""
    return Identity(name, publish=list(dict.fromkeys([*publish, *NODE_PUBLISH])),
                    subscribe=list(dict.fromkeys([*subscribe, *NODE_SUBSCRIBE])), **options)


def _openssl(args: Sequence[str], cwd: Path) -> None:
    result = subprocess.run(['openssl', *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def make_ca(directory: Path, stem: str, common_name: str) -> None:
    """A self-signed CA: STEM.key and STEM.pem in DIRECTORY."""
    # EC P-256 as SROS2 uses; Cyclone's auth plugin accepts P-256 and RSA-2048.
    _openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
              '-keyout', f'{stem}.key', '-out', f'{stem}.pem', '-days', str(CERT_DAYS),
              '-subj', f'/CN={common_name}/O=DC-DRL test'], directory)


def make_certificate(directory: Path, ca_stem: str, identity: Identity, stem: str = '') -> None:
    """STEM.key and STEM.pem (default stem: the identity's name) signed by the CA CA_STEM."""
    name = stem or identity.name
    # 'CN=/a,O=b' -> '/CN=\/a/O=b' (openssl's -subj form; a '/' inside a value is escaped)
    subject = ''.join('/' + part.replace('/', '\\/') for part in identity.subject.split(','))
    _openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
              '-keyout', f'{name}.key', '-out', f'{name}.csr', '-subj', subject], directory)
    _openssl(['x509', '-req', '-in', f'{name}.csr', '-CA', f'{ca_stem}.pem', '-CAkey', f'{ca_stem}.key',
              '-CAcreateserial', '-days', str(CERT_DAYS), '-out', f'{name}.pem'], directory)


def sign(directory: Path, stem: str, ca_stem: str = 'permissions_ca') -> None:
    """S/MIME-signs STEM.xml with a permissions CA into STEM.p7s (what the AC plugin verifies)."""
    _openssl(['smime', '-sign', '-text', '-in', f'{stem}.xml', '-out', f'{stem}.p7s',
              '-signer', f'{ca_stem}.pem', '-inkey', f'{ca_stem}.key'], directory)
