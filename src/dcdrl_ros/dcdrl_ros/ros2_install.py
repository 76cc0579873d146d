"""A real ROS 2 for tests and benchmarks: where it is, and the environment its processes run in.

Our tests run in .venv without ROS; whatever must run on real ROS 2 (rclpy nodes, `ros2` verbs,
`ros2 launch`, colcon builds of dcdrl_msgs, rqt_plot) runs as a child process in a sourced
environment. Where that ROS 2 comes from, first match wins:

1. ``DCDRL_ROS2``: a bash file to source (e.g. ``/opt/ros/jazzy/setup.bash``), or a folder holding
   ``setup.bash``; ``DCDRL_ROS2=none`` turns ROS 2 off for one run.
2. ``.ros2/setup.bash`` in this checkout, written by ``scripts/ros2_setup.py`` (``make test`` runs it
   where the ROS 2 tarballs named by the Makefile's ROS2_TARBALLS exist): the unpacked ROS 2 and its own Python venv.
3. The current environment, when a ROS 2 is sourced in it (``ROS_DISTRO`` set and ``ros2`` on PATH).

``DCDRL_REQUIRE_ROS2=1`` (set by ``make test`` where ROS 2 was set up, and by CI) makes tests that
need ROS 2 fail instead of skipping when none is found. Standard library only.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ENV_VAR = 'DCDRL_ROS2'
REQUIRE_VAR = 'DCDRL_REQUIRE_ROS2'
ROOT = Path(__file__).resolve().parents[3]  # the workspace root, in a source checkout
CHECKOUT_SETUP = ROOT / '.ros2' / 'setup.bash'
# What a ROS 2 child must not inherit from our test process: it chooses its own backend and Python path.
_DROP = ('DCDRL_BACKEND', 'PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')


@dataclass(frozen=True)
class Ros2:
    """One ROS 2 installation: the bash files that source it (empty: already sourced)."""
    setup_files: tuple[str, ...]
    origin: str
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def environment(self, base: dict | None = None, overlays: Sequence[str] = (), **extra: str) -> dict[str, str]:
        """A child's environment: ``base`` (default os.environ) without our backend choice, with this
        ROS 2 and then ``overlays`` (e.g. a colcon workspace's install/setup.bash) sourced, RMW Cyclone."""
        base = dict(os.environ if base is None else base)
        for name in _DROP:
            base.pop(name, None)
        key = (tuple(sorted(base.items())), tuple(overlays))
        if key not in self._cache:
            self._cache[key] = _sourced(base, [*self.setup_files, *overlays])
        env = dict(self._cache[key])
        env.setdefault('RMW_IMPLEMENTATION', 'rmw_cyclonedds_cpp')
        env['PYTHONUNBUFFERED'] = '1'
        env.update(extra)
        return env

    def python(self, env: dict | None = None) -> str:
        """The python3 that the ROS 2 scripts run with (first on the sourced PATH)."""
        env = env or self.environment()
        found = shutil.which('python3', path=env.get('PATH', ''))
        if not found:
            raise RuntimeError(f'no python3 on the PATH of ROS 2 from {self.origin}')
        return found


def _sourced(base: dict, files: Sequence[str]) -> dict[str, str]:
    if not files:
        return base
    script = ''.join(f'source {_quote(f)} >/dev/null || exit 3\n' for f in files) + 'env -0\n'
    result = subprocess.run(['bash', '-c', script], env=base, capture_output=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f'sourcing {list(files)} failed ({result.returncode}): '
                           f'{result.stderr.decode(errors="replace")[-2000:]}')
    env: dict[str, str] = {}
    for item in result.stdout.split(b'\0'):
        if b'=' in item:
            key, _, value = item.partition(b'=')
            env[key.decode()] = value.decode(errors='replace')
    for name in ('_', 'SHLVL', 'PWD', 'OLDPWD'):
        env.pop(name, None)
    return env


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def find(environ: Mapping[str, str] | None = None) -> tuple[Ros2 | None, str]:
    """(the ROS 2 to use, '') or (None, why there is none)."""
    environ = os.environ if environ is None else environ
    named = environ.get(ENV_VAR, '').strip()
    if named.lower() == 'none':
        return None, f'{ENV_VAR}=none'
    if named:
        path = Path(named)
        if path.is_dir():
            path = path / 'setup.bash'
        if not path.is_file():
            return None, f'{ENV_VAR}={named}: no such setup file (want a setup.bash or the folder holding it)'
        return Ros2((str(path),), f'{ENV_VAR}={named}'), ''
    if CHECKOUT_SETUP.is_file():
        return Ros2((str(CHECKOUT_SETUP),), str(CHECKOUT_SETUP)), ''
    if environ.get('ROS_DISTRO') and shutil.which('ros2', path=environ.get('PATH', '')):
        return Ros2((), f"the sourced ROS 2 {environ['ROS_DISTRO']}"), ''
    return None, ('no ROS 2 found: source one, set DCDRL_ROS2 to its setup.bash, or run `make test` where '
                  '../shared/ros2 holds the ROS 2 tarballs')


@functools.lru_cache(maxsize=1)
def cached() -> tuple[Ros2 | None, str]:
    return find()


def required(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(REQUIRE_VAR, '').strip().lower() in ('1', 'true', 'yes')


# --- a colcon build of this workspace on that ROS 2 -------------------------------------------------

_BUILD_INPUTS = ('src', 'launch', 'config', 'colcon.meta')
_SKIP_PARTS = {'__pycache__', '.pytest_cache', 'build', 'install', 'log'}


def workspace_hash(root: Path = ROOT) -> str:
    """A digest of everything a colcon build of the workspace reads (sources, launch, config)."""
    digest = hashlib.sha256()
    for name in _BUILD_INPUTS:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob('*') if p.is_file())
        for path in paths:
            rel = path.relative_to(root)
            if _SKIP_PARTS.intersection(rel.parts) or any(part.endswith('.egg-info') for part in rel.parts):
                continue
            digest.update(str(rel).encode() + b'\0' + path.read_bytes() + b'\0')
    return digest.hexdigest()[:16]


def build_workspace(ros2: Ros2, root: Path = ROOT, cache: Path | None = None, timeout: float = 600,
                    keep_s: float = 1800) -> Path:
    """`colcon build` of all the packages of src/ into ``cache``/ws-<hash>; reused while the sources are the same.

    Returns the install folder (source its setup.bash over ROS 2). Safe for several test runs at once:
    one builds under a lock into a temporary folder that is renamed when complete; builds of other
    sources are removed once unused for ``keep_s`` seconds.
    """
    import fcntl
    import tempfile
    import time
    cache = cache or root / '.ros2'
    key = workspace_hash(root)
    base = cache / f'ws-{key}'
    install = base / 'install'
    if (base / 'built').is_file():
        os.utime(base)
        return install
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / 'ws.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / 'built').is_file():  # another run built it while we waited
            return install
        for old in cache.glob('ws-*'):
            if old != base and time.time() - old.stat().st_mtime > keep_s:
                shutil.rmtree(old, ignore_errors=True)
        env = ros2.environment()
        colcon = shutil.which('colcon', path=env.get('PATH', ''))
        if not colcon:
            raise RuntimeError(f'colcon is not on the PATH of ROS 2 from {ros2.origin}')
        # colcon writes absolute paths into the install's setup files: build where it will stay.
        shutil.rmtree(base, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f'ws-{key}-', dir=cache))
        result = subprocess.run(
            [colcon, '--log-base', str(staging / 'log'), 'build', '--base-paths', str(root / 'src'),
             '--build-base', str(staging / 'build'), '--install-base', str(base / 'install')],
            cwd=str(root), env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(f'colcon build failed ({result.returncode}):\n{result.stdout[-4000:]}\n'
                               f'{result.stderr[-4000:]}')
        shutil.rmtree(staging, ignore_errors=True)
        (base / 'built').write_text(key + '\n')
    return install


@dataclass(frozen=True)
class Workspace:
    """This workspace built with colcon on a ROS 2: children run our packages as a ROS 2 user would."""
    ros2: Ros2
    install: Path

    def environment(self, base: dict | None = None, **extra: str) -> dict[str, str]:
        return self.ros2.environment(base, overlays=[str(self.install / 'setup.bash')], **extra)

    def python(self) -> str:
        return self.ros2.python(self.environment())
