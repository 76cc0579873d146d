#!/usr/bin/env python3
"""Makes the real ROS 2 of the ROS2_TARBALLS folder ready for tests: `make test` and CI run this first.

- unpacks the tarballs (core, and the bag, rqt and cv_bridge overlays where present) into
  .ros2/jazzy-<sha256 of the core tarball>/, once: a later run with the same tarball reuses it;
- builds .ros2/venv, the Python the ROS 2 scripts run with (`#!/usr/bin/env python3`): what that
  ROS 2 needs and .venv lacks or has in a version it cannot use (requirements-ros2.txt: empy 3 for
  rosidl, OpenCV 4 for cv_bridge, PyQt5 for rqt), with .venv's packages (torch, our dependencies)
  visible behind them, so nothing large is installed twice;
- writes .ros2/setup.bash, which puts that venv first on PATH and sources ROS 2 and its overlays.

Where DCDRL_ROS2 names a ROS 2 (e.g. /opt/ros/jazzy/setup.bash) it does nothing: that one is used.
Without the tarballs it prints why and exits 0 (`make test` then runs without ROS 2); with
--require it exits 1 instead. The ROS 2 build is for CPython 3.11 on x86_64 (its README).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ('core', 'bag', 'rqt', 'cvb')  # core first; the others are overlays, sourced in this order
REQUIREMENTS = ROOT / 'requirements-ros2.txt'


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def unpack(tarballs: Path, dest: Path) -> Path:
    core = tarballs / 'ros2-jazzy-core.tar.xz'
    target = dest / f'jazzy-{sha256(core)[:16]}'
    if (target / 'unpacked').is_file():
        return target
    for old in dest.glob('jazzy-*'):
        shutil.rmtree(old, ignore_errors=True)
    for part in PARTS:
        tarball = tarballs / f'ros2-jazzy-{part}.tar.xz'
        if not tarball.is_file():
            continue
        (target / part).mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(target / part, filter='tar' if hasattr(tarfile, 'tar_filter') else None)
    (target / 'unpacked').write_text('\n'.join(p for p in PARTS if (target / p).is_dir()) + '\n')
    return target


def venv_site_packages(python: Path) -> str:
    return subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()


def make_venv(dest: Path, base_venv: Path) -> Path:
    venv = dest / 'venv'
    stamp = venv / '.installed'
    wanted = sha256(REQUIREMENTS) + ' ' + str(base_venv.resolve())
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    subprocess.run([str(python), '-m', 'pip', 'install', '-q', '-r', str(REQUIREMENTS)], check=True)
    # .venv's packages behind ours: a .pth line that runs addsitedir also reads .venv's own .pth files.
    base_site = venv_site_packages(base_venv / 'bin' / 'python')
    (Path(venv_site_packages(python)) / 'zz_dcdrl_base_venv.pth').write_text(
        f'import site; site.addsitedir({base_site!r})\n')
    stamp.write_text(wanted + '\n')
    return venv


def write_setup(dest: Path, ros: Path, venv: Path) -> Path:
    parts = (ros / 'unpacked').read_text().split()
    lines = ['# Written by scripts/ros2_setup.py: the real ROS 2 for tests. Source it with bash.',
             f'export PATH={venv / "bin"}:$PATH',
             f'source {ros / "core" / "setup.bash"}']
    lines += [f'source {ros / part / "local_setup.bash"}' for part in parts if part != 'core']
    lines += ['export RMW_IMPLEMENTATION=rmw_cyclonedds_cpp', '']
    setup = dest / 'setup.bash'
    setup.write_text('\n'.join(lines))
    return setup


def why_not_here() -> str:
    if platform.machine() != 'x86_64':
        return f'the ROS 2 build is for x86_64, this machine is {platform.machine()}'
    if sys.version_info[:2] != (3, 11):
        return f'the ROS 2 build is for Python 3.11, this is {platform.python_version()}'
    if not sysconfig.get_config_var('Py_ENABLE_SHARED'):
        return 'the ROS 2 build needs a shared-library CPython (libpython3.11.so)'
    return ''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tarballs', type=Path, default=ROOT.parent / 'shared' / 'ros2',
                        help='folder with ros2-jazzy-*.tar.xz (default: ../shared/ros2)')
    parser.add_argument('--dest', type=Path, default=ROOT / '.ros2', help='where to unpack (default: .ros2)')
    parser.add_argument('--base-venv', type=Path, default=ROOT / '.venv', help="the project's venv (default: .venv)")
    parser.add_argument('--require', action='store_true', help='exit 1 when ROS 2 cannot be set up')
    args = parser.parse_args(argv)
    named = os.environ.get('DCDRL_ROS2', '').strip()
    if named and named.lower() != 'none':
        print(f'ros2_setup: DCDRL_ROS2={named} names the ROS 2 to use; nothing to set up')
        return 0
    reason = why_not_here()
    if not reason and not (args.tarballs / 'ros2-jazzy-core.tar.xz').is_file():
        reason = f'no ROS 2 tarballs in {args.tarballs}'
    if reason:
        print(f'ros2_setup: {reason}; tests that need ROS 2 will skip', file=sys.stderr)
        return 1 if args.require else 0
    args.dest.mkdir(parents=True, exist_ok=True)
    ros = unpack(args.tarballs, args.dest)
    venv = make_venv(args.dest, args.base_venv)
    setup = write_setup(args.dest, ros, venv)
    print(f'ros2_setup: ROS 2 Jazzy ready: source {os.path.relpath(setup)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
