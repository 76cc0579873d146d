"""`dcdrl run` and `dcdrl pkg executables`: a package's executables are its console_scripts entry points
(what colcon installs into lib/PKG for `ros2 run`)."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from typing import Any

EXIT_USAGE = 2


def _distribution(package: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise LookupError(f"Package '{package}' not found") from None


def package_executables(package: str) -> list[importlib.metadata.EntryPoint]:
    """The executables of an installed package, sorted by name; LookupError when it is not installed."""
    scripts = [ep for ep in _distribution(package).entry_points if ep.group == 'console_scripts']
    return sorted(scripts, key=lambda ep: ep.name)


def find_executable(package: str, executable: str) -> importlib.metadata.EntryPoint:
    """The console_scripts entry point EXE of the installed distribution PKG (what ros2 run runs)."""
    try:
        scripts = package_executables(package)
    except LookupError:
        raise LookupError(f"package '{package}' not found (run `make venv` or `colcon build` and source it)") from None
    for entry_point in scripts:
        if entry_point.name == executable:
            return entry_point
    names = ', '.join(ep.name for ep in scripts) or 'none'
    raise LookupError(f"no executable '{executable}' in package '{package}' (it has: {names})")


def _is_ros_package(distribution: importlib.metadata.Distribution) -> bool:
    """A ROS package ships a package.xml: installed under share/NAME/ (colcon, pip) or, for an editable
    install, beside its setup.py."""
    name = distribution.metadata['Name'] or ''
    if any(str(f).replace('\\', '/').endswith(f'share/{name}/package.xml') for f in distribution.files or []):
        return True
    try:
        url = json.loads(distribution.read_text('direct_url.json') or '{}').get('url', '')
    except ValueError:
        return False
    return url.startswith('file://') and os.path.isfile(os.path.join(url[len('file://'):], 'package.xml'))


def ros_packages() -> list[str]:
    names = {d.metadata['Name'] for d in importlib.metadata.distributions() if _is_ros_package(d)}
    return sorted(n for n in names if n)


def cmd_executables(args: argparse.Namespace) -> int:
    packages = [args.package_name] if args.package_name else ros_packages()
    for package in sorted(packages):
        try:
            scripts = package_executables(package)
        except LookupError as error:
            sys.stderr.write(f'{error}\n')
            return 1
        for entry_point in scripts:
            print(executable_path(package, entry_point.name) if args.full_path else f'{package} {entry_point.name}')
    return 0


def executable_path(package: str, executable: str) -> str:
    """Where pip installed the script (its bin/ folder), as `ros2 pkg executables --full-path` shows lib/PKG/."""
    distribution = _distribution(package)
    for path in distribution.files or []:
        if path.name == executable and path.parent.name in ('bin', 'Scripts', package):
            return os.path.normpath(str(distribution.locate_file(path)))
    return os.path.join(os.path.dirname(sys.executable), executable)


def cmd_pkg_list(_args: argparse.Namespace) -> int:
    for name in ros_packages():
        print(name)
    return 0


def cmd_run(argv: list[str]) -> int:
    """`dcdrl run PKG EXE [args] [--ros-args ...]`; `dcdrl run PKG` lists PKG's executables. The arguments
    go to the executable as `ros2 run` passes them: `dcdrl run PKG NODE --help` prints the node's parameters
    (node_usage.py)."""
    if not argv or argv[0].startswith('-'):
        usage = ('usage: dcdrl run PKG EXE [args...] [--ros-args ...]\n'
                 '  PKG alone lists its executables; EXE --help shows a node\'s parameters\n')
        asked = bool(argv) and argv[0] in ('-h', '--help')
        (sys.stdout if asked else sys.stderr).write(usage)
        return 0 if asked else EXIT_USAGE
    package = argv[0]
    if len(argv) == 1 or argv[1].startswith('-'):
        try:
            scripts = package_executables(package)
        except LookupError as error:
            sys.stderr.write(f'dcdrl run: {error}\n')
            return 1
        for entry_point in scripts:
            print(package, entry_point.name)
        return 0
    executable, rest = argv[1], argv[2:]
    try:
        entry_point = find_executable(package, executable)
    except LookupError as error:
        sys.stderr.write(f'dcdrl run: {error}\n')
        return 1
    sys.argv = [executable, *rest]
    result = entry_point.load()()
    return result if isinstance(result, int) else 0


def add_arguments(verbs: Any) -> None:
    verbs.add_parser('run', help='run an executable of a package (PKG alone lists them)', add_help=False)
    pkg = verbs.add_parser('pkg', help='packages').add_subparsers(dest='verb', required=True)
    sub = pkg.add_parser('executables', help="a package's executables (all ROS packages without PKG)")
    sub.add_argument('package_name', nargs='?')
    sub.add_argument('--full-path', action='store_true')
    sub.set_defaults(handler=cmd_executables)
    sub = pkg.add_parser('list', help='the installed ROS packages')
    sub.set_defaults(handler=cmd_pkg_list)

