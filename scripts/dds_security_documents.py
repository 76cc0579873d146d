"""DDS Security documents and configuration: the signed governance (every topic encrypted, authenticated
participants only) and permissions (one grant per identity), Cyclone DDS's <Security> XML for a flat test
PKI or an SROS2 enclave, and the whole test PKI directory (``make_pki``)."""
from __future__ import annotations

import datetime as dt
import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dds_certificates import CERT_DAYS, Identity, make_ca, make_certificate, sign  # noqa: E402  (this folder)

PLUGIN_NAMES = ('libdds_security_auth.so', 'libdds_security_ac.so', 'libdds_security_crypto.so')
# Debian installs the plugins in a private directory of libddsc0debian (not on the loader path).
PLUGIN_DIR_GLOB = '/usr/lib/*/libddsc0debian'
DOMAIN_ID = 0


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


def find_plugin_dir(named: str | None = None) -> str | None:
    """NAMED (e.g. ROS 2's lib/, from `secure_ros2.py binding`) or Debian's directory, if it holds the plugins."""
    for directory in [named] if named else sorted(glob.glob(PLUGIN_DIR_GLOB)):
        if all(os.path.exists(os.path.join(directory, name)) for name in PLUGIN_NAMES):
            return os.path.abspath(directory)  # Cyclone loads the plugins by this path
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
        make_ca(directory, f'{prefix}identity_ca', f'{owner} identity CA')
        make_ca(directory, f'{prefix}permissions_ca', f'{owner} permissions CA')
        (directory / f'{prefix}governance.xml').write_text(governance_xml(domain_id))
        sign(directory, f'{prefix}governance', f'{prefix}permissions_ca')
    configs = {}
    for identity in identities:
        prefix = 'foreign_' if identity.foreign_ca else ''
        make_certificate(directory, f'{prefix}identity_ca', identity)
        (directory / f'{identity.name}_permissions.xml').write_text(permissions_xml(identity, domain_id))
        sign(directory, f'{identity.name}_permissions', f'{prefix}permissions_ca')
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
