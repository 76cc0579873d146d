"""Which network interfaces our Cyclone DDS participant enables, and why loopback is one of them.

rmw_cyclonedds_cpp (ROS 2 Humble to Jazzy) links Cyclone DDS 0.10, our runtime the PyPI Cyclone 11.
Cyclone 11 drops a discovery (SPDP) packet that arrives on an interface it has not enabled
(`accept_packet_from_interface` in ddsi_discovery_spdp.c); 0.10 accepts it. On one machine, a ROS 2
node with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST announces itself to 127.0.0.1: the packet arrives
on `lo`, while both sides picked the machine's external interface (eth0) by default. Without loopback
enabled, a ROS 2 node or tool started after our graph never saw it. So we enable, as Cyclone 11 does
by itself when nothing is configured, the best external interface (`autodetermine`) and also `lo`.
Cyclone never uses a loopback address that a participant on another host advertises, so other
machines are unaffected.

Cyclone refuses to select one interface twice: when the machine has no external interface (a network
namespace with only `lo`), its automatic choice is `lo` already, and nothing is added. A user who sets
CYCLONEDDS_URI with their own <Interfaces> keeps full control: nothing is added then either.
"""
from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8

LOOPBACK_INTERFACES = ('<Interfaces><NetworkInterface autodetermine="true"/>'
                       '<NetworkInterface address="127.0.0.1" priority="-1" presence_required="false"/></Interfaces>')


@dataclass(frozen=True)
class NetworkInterface:
    name: str
    up: bool
    loopback: bool
    has_ipv4: bool


def list_interfaces() -> list[NetworkInterface] | None:
    """The machine's interfaces with the flags Cyclone looks at; None where they cannot be read (not Linux)."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            request = struct.pack('256s', name.encode()[:15])
            try:
                flags = struct.unpack('H', fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)[16:18])[0]
            except OSError:
                return None
            try:
                fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
                has_ipv4 = True
            except OSError:  # EADDRNOTAVAIL: no IPv4 address on it
                has_ipv4 = False
            found.append(NetworkInterface(name, bool(flags & _IFF_UP), bool(flags & _IFF_LOOPBACK), has_ipv4))
    return found


def has_external_interface(interfaces: Iterable[NetworkInterface]) -> bool:
    """True when Cyclone's automatic choice is not loopback: an interface that is up, not loopback,
    with an IPv4 address (what Cyclone's UDP transport can use)."""
    return any(i.up and not i.loopback and i.has_ipv4 for i in interfaces)


def user_config_text(environ: Mapping[str, str]) -> str:
    """CYCLONEDDS_URI's XML: its inline fragments and the text of the files it names (comma-separated)."""
    parts = []
    for part in environ.get('CYCLONEDDS_URI', '').split(','):
        part = part.strip()
        if part.startswith('<'):
            parts.append(part)
        elif part:
            path = part[len('file://'):] if part.startswith('file://') else part
            try:
                with open(path, encoding='utf-8', errors='replace') as handle:
                    parts.append(handle.read())
            except OSError:
                pass  # Cyclone itself reports a file it cannot read
    return '\n'.join(parts)


def interfaces_config(environ: Mapping[str, str], interfaces: Iterable[NetworkInterface] | None = None) -> str:
    """The <General> fragment that enables loopback beside the automatic interface, or '' where
    Cyclone's own choice is already right (only loopback there, or the user configures interfaces)."""
    if 'NetworkInterface' in user_config_text(environ):
        return ''
    if interfaces is None:
        interfaces = list_interfaces()
        if interfaces is None:
            return ''
    return LOOPBACK_INTERFACES if has_external_interface(interfaces) else ''
