"""An emulated multi-host testbed on one Linux machine: network namespaces joined by a shaped switch.

The Pi (device), the edge box and the PC (cloud) become network namespaces. Each has one
interface ``eth0`` with a private address; a fifth namespace (the "switch") holds a Linux bridge
and the other ends of the veth cables. Every pair of hosts is a *link* whose bandwidth is shaped
in both directions with HTB classes on the switch ports, selected by the sender's address:

    device (10.77.0.1) ──veth── ┐
    edge   (10.77.0.2) ──veth── ┼─ br0 in the switch namespace; on the port towards host H one
    cloud  (10.77.0.3) ──veth── ┘  HTB class per other host G (rate = bandwidth of link G-H)

So a user's real layout (machines on one network, one address each, ROS_STATIC_PEERS naming the
others) is what the nodes see. Multicast is dropped at the switch by default, as across routers,
many Wi-Fi access points and cloud networks, so discovery has to work through the documented
unicast peers. ``cut(link)`` drops every packet of a link silently (the leaf queue of its two
classes becomes a zero-length FIFO), as a broken WAN does; ``restore(link)`` brings it back.

Everything it creates lives inside namespaces whose names carry this run's pid and a random tag,
so parallel runs never collide; ``close()`` (also on ``__exit__``, after errors) stops every
process it started (process group: SIGINT, then SIGKILL), kills whatever is still inside its
namespaces by pid, and deletes the namespaces (which deletes the bridge, cables and queues with
them). Namespaces left by a run that was killed with SIGKILL are removed by the next Testbed
(``remove_stale_testbeds``). No ROS import: this is plain ``ip`` and ``tc``; root is required.

    with Testbed(bandwidth_mbps=1.0) as bed:
        env = bed.dds_env('device', domain_id=42)
        talker = bed.run('device', [sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'talker'], env)
        bed.set_bandwidth('device-cloud', 0.06)
        bed.cut('device-cloud'); ...; bed.restore('device-cloud')
"""
from __future__ import annotations

import functools
import ipaddress
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from dcdrl_ros.processes import pid_alive, stop_session
from dcdrl_ros.testing import ChildProcess

DEFAULT_HOSTS = ('device', 'edge', 'cloud')
NAME_PREFIX = 'dcdrl-'
UNLIMITED_MBPS = 10_000.0        # an unshaped link: 10 Gbit/s, far above what veths carry here
MAX_MBPS = 100_000.0
_HOST_NAME = re.compile(r'^[a-z][a-z0-9_]{0,15}$')
_STALE_NAME = re.compile(r'^' + re.escape(NAME_PREFIX) + r'(\d+)x[0-9a-f]+-[a-z0-9_]+$')
_MULTICAST_CLASS = 0x2
_DEFAULT_CLASS = 0x1
_PEER_CLASS_BASE = 0x10         # class 1:(0x10 + index of the sending host)


class NetnsError(RuntimeError):
    """An ``ip`` / ``tc`` command failed; the message has the command and its error output."""


def _command(argv: Sequence[str], check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise NetnsError(f"`{' '.join(argv)}` failed ({result.returncode}): "
                         f'{(result.stderr or result.stdout).strip()}')
    return result


@functools.lru_cache(maxsize=1)
def netns_available() -> tuple[bool, str]:
    """(True, '') if this process can build a testbed, else (False, why): Linux, root, ``ip`` and
    ``tc`` present, and a probe namespace with a veth, a bridge and an HTB queue works."""
    if not sys.platform.startswith('linux'):
        return False, f'network namespaces need Linux (this is {sys.platform})'
    if os.geteuid() != 0:
        return False, 'network namespaces and tc need root: run as root (e.g. sudo .venv/bin/python ...)'
    for tool in ('ip', 'tc'):
        if shutil.which(tool) is None:
            return False, f"'{tool}' not found (install iproute2)"
    probe = f'{NAME_PREFIX}{os.getpid()}x{secrets.token_hex(3)}-probe'
    steps = [['ip', 'netns', 'add', probe],
             ['ip', '-n', probe, 'link', 'add', 'br0', 'type', 'bridge'],
             ['ip', '-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'],
             ['ip', '-n', probe, 'link', 'set', 'p0', 'up'],
             ['tc', '-n', probe, 'qdisc', 'add', 'dev', 'p0', 'root', 'handle', '1:', 'htb', 'default', '1'],
             ['tc', '-n', probe, 'class', 'add', 'dev', 'p0', 'parent', '1:', 'classid', '1:10', 'htb',
              'rate', '1mbit'],
             ['tc', '-n', probe, 'filter', 'add', 'dev', 'p0', 'parent', '1:', 'protocol', 'ip', 'prio', '10',
              'u32', 'match', 'ip', 'src', '10.77.0.1/32', 'flowid', '1:10']]
    try:
        for argv in steps:
            result = _command(argv, check=False)
            if result.returncode != 0:
                return False, f"`{' '.join(argv)}` failed: {result.stderr.strip()}"
        return True, ''
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f'probing network namespaces failed: {error}'
    finally:
        subprocess.run(['ip', 'netns', 'del', probe], capture_output=True, timeout=20)


def _namespace_pids(namespace: str) -> list[int]:
    result = _command(['ip', 'netns', 'pids', namespace], check=False)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _kill_namespace_processes(namespace: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process still inside ``namespace`` (ours by construction); returns their pids."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = [pid for pid in _namespace_pids(namespace) if pid != os.getpid()]
        if not pids or time.monotonic() > deadline:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                if pid not in killed:
                    killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)  # poll until the kernel has reaped them (bounded by the deadline)


def list_namespaces() -> list[str]:
    result = _command(['ip', 'netns', 'list'], check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def remove_stale_testbeds() -> list[str]:
    """Deletes namespaces of testbeds whose creating process no longer exists (a run killed with
    SIGKILL cannot clean up), with whatever still runs inside them. Returns the names removed."""
    removed = []
    for name in list_namespaces():
        match = _STALE_NAME.match(name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        _kill_namespace_processes(name)
        if _command(['ip', 'netns', 'del', name], check=False).returncode == 0:
            removed.append(name)
    return removed


def _rate(mbps: float) -> str:
    return f'{max(1, int(round(mbps * 1e6)))}bit'


def _htb_args(mbps: float) -> list[str]:
    """rate = ceil = the link's bandwidth; quantum and burst scaled so that tc neither warns nor
    lets a large burst through at low rates (2 ms of line time, at least two full frames)."""
    bytes_per_s = mbps * 1e6 / 8
    quantum = int(min(200_000, max(1514, bytes_per_s / 10)))
    burst = int(max(3028, bytes_per_s * 0.002))
    return ['rate', _rate(mbps), 'ceil', _rate(mbps), 'burst', str(burst), 'cburst', str(burst),
            'quantum', str(quantum)]


def _check_mbps(mbps: float | None, what: str) -> float:
    if mbps is None:
        return UNLIMITED_MBPS
    if isinstance(mbps, bool) or not isinstance(mbps, (int, float)):
        raise TypeError(f'{what} must be a number of Mbit/s or None (unshaped), got {type(mbps).__name__}')
    if not math.isfinite(mbps) or not 0 < mbps <= MAX_MBPS:
        raise ValueError(f'{what} must be in (0, {MAX_MBPS:g}] Mbit/s, got {mbps!r}')
    return float(mbps)


class LoggedProcess:
    """A child in its own session whose output goes to a log file (for long runs); stopped by pid."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None,
                 log_path: str) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[str] = open(log_path, 'w', buffering=1)
        self.process = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None,
                                        cwd=cwd, text=True, start_new_session=True)
        self.pid = self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT to the child's process group, then SIGKILL if it does not exit in time."""
        returncode = stop_session(self.process, timeout)
        self._log.close()
        return returncode


Process = ChildProcess | LoggedProcess


class Testbed:
    """Hosts as network namespaces on one shaped switch; a context manager that always cleans up.

    Args:
        hosts: host names (lower case, <= 16 characters), in the order their addresses are given.
        bandwidth_mbps: bandwidth of every link (Mbit/s, each direction), a mapping for some
            links (others unshaped): ``{'device-cloud': 1.0}`` (both directions) or
            ``{'cloud->device': 0.06}`` (one direction), or None (every link unshaped).
        subnet: private IPv4 network of the hosts; host k gets the (k+1)-th address.
        block_multicast: drop multicast at the switch (default True: discovery must use unicast
            peers, as between real sites); False floods it like a home LAN switch.
        queue_packets: queue length of each shaped link (packets); beyond it packets are dropped.
        remove_stale: first delete namespaces left by dead testbeds (``remove_stale_testbeds``).
    """
    __test__ = False  # not a pytest test class despite its name

    def __init__(self, hosts: Sequence[str] = DEFAULT_HOSTS,
                 bandwidth_mbps: None | float | Mapping[str, float | None] = None,
                 subnet: str = '10.77.0.0/24', block_multicast: bool = True, queue_packets: int = 1000,
                 remove_stale: bool = True) -> None:
        hosts = list(hosts)
        if len(hosts) < 2 or len(set(hosts)) != len(hosts):
            raise ValueError(f'hosts must be at least two distinct names, got {hosts}')
        for host in hosts:
            if not isinstance(host, str) or not _HOST_NAME.match(host):
                raise ValueError(f'host name {host!r} must be lower case letters, digits or _ (<= 16, '
                                 f'starting with a letter)')
            if host in ('sw', 'probe'):
                raise ValueError(f"host name {host!r} is reserved (the switch's and the probe's namespaces)")
        network = ipaddress.ip_network(subnet, strict=True)
        if network.version != 4 or not network.is_private:
            raise ValueError(f'subnet must be a private IPv4 network (e.g. 10.77.0.0/24), got {subnet!r}')
        if network.num_addresses - 2 < len(hosts):
            raise ValueError(f'subnet {subnet} has room for fewer than {len(hosts)} hosts')
        if isinstance(queue_packets, bool) or not isinstance(queue_packets, int) or queue_packets < 1:
            raise ValueError(f'queue_packets must be an integer >= 1, got {queue_packets!r}')
        self.hosts = hosts
        self.network = network
        self.block_multicast = bool(block_multicast)
        self.queue_packets = queue_packets
        self.remove_stale = remove_stale
        self.run_id = f'{os.getpid()}x{secrets.token_hex(3)}'
        self.switch = f'{NAME_PREFIX}{self.run_id}-sw'
        self._addresses = {host: str(network.network_address + k + 1) for k, host in enumerate(hosts)}
        # Mbit/s per direction (sender, receiver); unshaped = UNLIMITED_MBPS.
        self._bandwidth: dict[tuple[str, str], float] = {
            (a, b): UNLIMITED_MBPS for a in hosts for b in hosts if a != b}
        if isinstance(bandwidth_mbps, Mapping):
            for link, mbps in bandwidth_mbps.items():
                value = _check_mbps(mbps, f'bandwidth of {link}')
                for direction in self._directions(link):
                    self._bandwidth[direction] = value
        else:
            value = _check_mbps(bandwidth_mbps, 'bandwidth_mbps')
            self._bandwidth = {direction: value for direction in self._bandwidth}
        self._cut: set[tuple[str, str]] = set()
        self._namespaces: list[str] = []     # created, in order (deleted in reverse)
        self._processes: list[Process] = []
        self.leftover_pids: list[int] = []   # killed by close() because still inside a namespace
        self.started = False
        self.closed = False

    # ------------------------------------------------------------------ names
    @property
    def links(self) -> list[str]:
        """Every pair of hosts, 'a-b' with a before b in ``hosts``."""
        return [f'{a}-{b}' for i, a in enumerate(self.hosts) for b in self.hosts[i + 1:]]

    def link_name(self, link: str) -> str:
        """The canonical name of a link given as 'a-b' or 'b-a' (or of a direction 'a->b')."""
        if isinstance(link, str) and '->' in link:
            sender, receiver = self._parse(link, '->')
            return f'{sender}->{receiver}'
        a, b = sorted(self._parse(link, '-'), key=self.hosts.index)
        return f'{a}-{b}'

    def _parse(self, link: str, separator: str) -> tuple[str, str]:
        parts = link.split(separator) if isinstance(link, str) else []
        if len(parts) != 2 or parts[0] == parts[1] or not all(p in self.hosts for p in parts):
            raise ValueError(f"a link is two different hosts of {self.hosts} joined by '-' (both directions) "
                             f"or '->' (one direction), got {link!r}")
        return parts[0], parts[1]

    def _directions(self, link: str) -> list[tuple[str, str]]:
        """(sender, receiver) pairs meant by 'a-b' (both) or 'a->b' (one)."""
        if isinstance(link, str) and '->' in link:
            return [self._parse(link, '->')]
        a, b = self._parse(link, '-')
        return [(a, b), (b, a)]

    def namespace(self, host: str) -> str:
        self._check_host(host)
        return f'{NAME_PREFIX}{self.run_id}-{host}'

    def address(self, host: str) -> str:
        self._check_host(host)
        return self._addresses[host]

    def peers(self, host: str) -> list[str]:
        """The other hosts' addresses (what ROS_STATIC_PEERS lists on this host)."""
        self._check_host(host)
        return [self._addresses[other] for other in self.hosts if other != host]

    def bandwidth(self, link: str) -> float | None:
        """Mbit/s of a direction 'a->b', or of a link 'a-b' whose two directions agree; None = unshaped."""
        values = {self._bandwidth[d] for d in self._directions(link)}
        if len(values) != 1:
            raise ValueError(f"the directions of {link} have different bandwidths: ask for 'a->b'")
        value = values.pop()
        return None if value == UNLIMITED_MBPS else value

    def is_cut(self, link: str) -> bool:
        """True when any direction of the link (or the given direction) is cut."""
        return any(d in self._cut for d in self._directions(link))

    def _check_host(self, host: str) -> None:
        if host not in self.hosts:
            raise ValueError(f'unknown host {host!r}; hosts are {self.hosts}')

    def _port(self, host: str) -> str:
        return f'p{self.hosts.index(host)}'  # the switch's port towards host (its own namespace)

    # ------------------------------------------------------------------ environment
    def dds_env(self, host: str, domain_id: int, base: Mapping[str, str] | None = None,
                discovery_range: str | None = None, **extra: str) -> dict[str, str]:
        """The environment a user would set on that machine (docs/multihost.md): ROS_DOMAIN_ID,
        ROS_STATIC_PEERS=<the other hosts> and ROS_AUTOMATIC_DISCOVERY_RANGE, by default LOCALHOST
        when the switch drops multicast (unicast only: this host and the listed peers) and SUBNET
        when it floods it. Why not SUBNET + peers without multicast: Cyclone then still sends
        discovery and data to its multicast address once two or more remote participants share
        it, and those packets are lost (measured: listeners on two hosts heard nothing)."""
        if isinstance(domain_id, bool) or not isinstance(domain_id, int) or not 0 <= domain_id <= 232:
            raise ValueError(f'domain_id must be an integer in 0..232, got {domain_id!r}')
        if discovery_range is None:
            discovery_range = 'LOCALHOST' if self.block_multicast else 'SUBNET'
        if discovery_range not in ('LOCALHOST', 'SUBNET'):
            raise ValueError(f"discovery_range must be 'LOCALHOST' or 'SUBNET', got {discovery_range!r}")
        env = dict(os.environ if base is None else base)
        env.pop('ROS_LOCALHOST_ONLY', None)  # deprecated; would override the range
        env.update({'ROS_DOMAIN_ID': str(domain_id), 'ROS_AUTOMATIC_DISCOVERY_RANGE': discovery_range,
                    'ROS_STATIC_PEERS': ';'.join(self.peers(host)), 'PYTHONUNBUFFERED': '1'})
        env.update(extra)
        return env

    # ------------------------------------------------------------------ build and tear down
    def __enter__(self) -> Testbed:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(raise_errors=exc[0] is None)

    def start(self) -> Testbed:
        if self.started:
            raise RuntimeError('testbed already started')
        available, reason = netns_available()
        if not available:
            raise NetnsError(f'cannot build a testbed: {reason}')
        if self.remove_stale:
            remove_stale_testbeds()
        self.started = True
        sw = self.switch
        for name in [sw] + [self.namespace(h) for h in self.hosts]:
            _command(['ip', 'netns', 'add', name])
            self._namespaces.append(name)
            _command(['ip', '-n', name, 'link', 'set', 'lo', 'up'])
        # No STP (ports forward at once); no multicast snooping (multicast, if allowed, is flooded).
        _command(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0'])
        _command(['ip', '-n', sw, 'link', 'set', 'br0', 'up'])
        prefix = self.network.prefixlen
        for host in self.hosts:
            ns, port = self.namespace(host), self._port(host)
            _command(['ip', '-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
            _command(['ip', '-n', sw, 'link', 'set', port, 'master', 'br0', 'up'])
            _command(['ip', '-n', ns, 'addr', 'add', f'{self.address(host)}/{prefix}', 'dev', 'eth0'])
            _command(['ip', '-n', ns, 'link', 'set', 'eth0', 'up'])
            self._shape_port(host)
        return self

    def _shape_port(self, host: str) -> None:
        """HTB on the switch port towards ``host``: one class per other host, chosen by source address."""
        tc = ['tc', '-n', self.switch]
        dev = ['dev', self._port(host)]
        _command([*tc, 'qdisc', 'add', *dev, 'root', 'handle', '1:', 'htb', 'default', f'{_DEFAULT_CLASS:x}'])
        _command([*tc, 'class', 'add', *dev, 'parent', '1:', 'classid', f'1:{_DEFAULT_CLASS:x}', 'htb',
                  *_htb_args(UNLIMITED_MBPS)])
        if self.block_multicast:
            _command([*tc, 'class', 'add', *dev, 'parent', '1:', 'classid', f'1:{_MULTICAST_CLASS:x}', 'htb',
                      *_htb_args(UNLIMITED_MBPS)])
            _command([*tc, 'qdisc', 'add', *dev, 'parent', f'1:{_MULTICAST_CLASS:x}', 'handle',
                      f'{_MULTICAST_CLASS:x}:', 'pfifo', 'limit', '0'])  # drops everything
            _command([*tc, 'filter', 'add', *dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
                      'match', 'ip', 'dst', '224.0.0.0/4', 'flowid', f'1:{_MULTICAST_CLASS:x}'])
        for sender in self.hosts:
            if sender == host:
                continue
            classid = self._class(sender)
            _command([*tc, 'class', 'add', *dev, 'parent', '1:', 'classid', f'1:{classid:x}', 'htb',
                      *_htb_args(self._bandwidth[(sender, host)])])
            _command([*tc, 'qdisc', 'add', *dev, 'parent', f'1:{classid:x}', 'handle', f'{classid:x}:',
                      'pfifo', 'limit', str(self.queue_packets)])
            _command([*tc, 'filter', 'add', *dev, 'parent', '1:', 'protocol', 'ip', 'prio', '10', 'u32',
                      'match', 'ip', 'src', f'{self.address(sender)}/32', 'flowid', f'1:{classid:x}'])

    def _class(self, sender: str) -> int:
        return _PEER_CLASS_BASE + self.hosts.index(sender)

    def _require_running(self) -> None:
        if not self.started or self.closed:
            raise RuntimeError('the testbed is not running (use it inside `with Testbed(...)`)')

    def set_bandwidth(self, link: str, mbps: float | None) -> None:
        """Changes the bandwidth of a link 'a-b' (both directions) or of one direction 'a->b' while
        everything runs; None = unshaped. Packets already queued keep their place."""
        self._require_running()
        value = _check_mbps(mbps, f'bandwidth of {link}')
        for sender, receiver in self._directions(link):
            _command(['tc', '-n', self.switch, 'class', 'change', 'dev', self._port(receiver), 'parent', '1:',
                      'classid', f'1:{self._class(sender):x}', 'htb', *_htb_args(value)])
            self._bandwidth[(sender, receiver)] = value

    def _set_queue(self, sender: str, receiver: str, limit: int) -> None:
        classid = self._class(sender)
        _command(['tc', '-n', self.switch, 'qdisc', 'replace', 'dev', self._port(receiver), 'parent',
                  f'1:{classid:x}', 'handle', f'{classid:x}:', 'pfifo', 'limit', str(limit)])

    def cut(self, link: str) -> None:
        """Drops every packet of the link 'a-b' (or of one direction 'a->b') silently, as a broken
        WAN does: no error reaches the hosts. What was queued on it is lost too."""
        self._require_running()
        for sender, receiver in self._directions(link):
            self._set_queue(sender, receiver, 0)
            self._cut.add((sender, receiver))

    def restore(self, link: str) -> None:
        """Undoes ``cut``: the link carries packets again at its bandwidth."""
        self._require_running()
        for sender, receiver in self._directions(link):
            self._set_queue(sender, receiver, self.queue_packets)
            self._cut.discard((sender, receiver))

    def link_counters(self, link: str) -> dict[str, dict[str, int]]:
        """Bytes, packets and drops of each direction of a link so far ('a->b': {...})."""
        self._require_running()
        counters = {}
        for sender, receiver in self._directions(link):
            text = _command(['tc', '-n', self.switch, '-s', 'class', 'show', 'dev', self._port(receiver),
                             'classid', f'1:{self._class(sender):x}']).stdout
            sent = re.search(r'Sent (\d+) bytes (\d+) pkt \(dropped (\d+)', text)
            values = [int(v) for v in sent.groups()] if sent else [0, 0, 0]
            counters[f'{sender}->{receiver}'] = dict(zip(('bytes', 'packets', 'dropped'), values))
        return counters

    # ------------------------------------------------------------------ processes
    def command(self, host: str) -> list[str]:
        """The argv prefix that runs a program inside a host's namespace."""
        return ['ip', 'netns', 'exec', self.namespace(host)]

    def run(self, host: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
            cwd: str | None = None) -> ChildProcess:
        """Starts ``argv`` inside ``host`` (own session; its output lines can be awaited)."""
        self._require_running()
        child = ChildProcess([*self.command(host), *argv], env=dict(env) if env is not None else None, cwd=cwd)
        self._processes.append(child)
        return child

    def run_logged(self, host: str, argv: Sequence[str], log_path: str, env: Mapping[str, str] | None = None,
                   cwd: str | None = None) -> LoggedProcess:
        """Starts ``argv`` inside ``host`` with its output going to ``log_path``."""
        self._require_running()
        child = LoggedProcess([*self.command(host), *argv], env, cwd, log_path)
        self._processes.append(child)
        return child

    def exec(self, host: str, argv: Sequence[str], timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Runs a short command inside ``host`` and returns its result (no check)."""
        self._require_running()
        return _command([*self.command(host), *argv], check=False, timeout=timeout)

    def close(self, raise_errors: bool = False, grace_s: float = 10.0) -> list[str]:
        """Stops every process started here, kills what is left in the namespaces, deletes them.
        Every step runs even when an earlier one failed; returns the problems (or raises them)."""
        if self.closed:
            return []
        self.closed = True
        problems: list[str] = []
        # 1. SIGINT to every process group at once, then wait for all with one deadline.
        for child in self._processes:
            if child.process.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + grace_s
        for child in self._processes:
            try:
                child.stop(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as error:  # keep going: the namespaces must go whatever happens
                problems.append(f'stopping {child.argv}: {error!r}')
        # 2. Anything still inside our namespaces (e.g. a node whose launcher was killed).
        for name in reversed(self._namespaces):
            try:
                self.leftover_pids += _kill_namespace_processes(name)
            except Exception as error:
                problems.append(f'listing processes of {name}: {error!r}')
        # 3. The namespaces (their interfaces, bridge and queues go with them).
        for name in reversed(self._namespaces):
            try:
                result = _command(['ip', 'netns', 'del', name], check=False)
                if result.returncode != 0 and name in list_namespaces():
                    problems.append(f'deleting {name}: {result.stderr.strip()}')
            except Exception as error:
                problems.append(f'deleting {name}: {error!r}')
        self._namespaces = []
        if problems and raise_errors:
            raise NetnsError('testbed teardown: ' + '; '.join(problems))
        return problems
