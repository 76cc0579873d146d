"""Where things are: the workspace root, package share directories, launch files, interfaces.

The same lookups work in three layouts:
- after ``colcon build`` (or in a ROS 2 install): ``AMENT_PREFIX_PATH`` lists install prefixes
  whose ``share/<pkg>/`` hold package.xml, launch/, config/ and msg/ (as ament_index does it);
- after ``pip install`` of a package (a wheel puts data_files under ``sys.prefix/share/<pkg>``);
- in a source checkout (``pip install -e`` or the tests' sys.path): launch/ and config/ live
  once at the workspace root, so the root stands in for every workspace package's share dir.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    'PackageNotFoundError',
    'find_workspace_root',
    'find_package_share',
    'find_launch_file',
    'interface_search_path',
    'workspace_packages',
]

WORKSPACE_ENV = 'DCDRL_WORKSPACE'
INTERFACE_PATH_ENV = 'DCDRL_INTERFACE_PATH'
_PACKAGE_DIR = Path(__file__).resolve().parent  # .../src/dcdrl_ros/dcdrl_ros


class PackageNotFoundError(LookupError):
    """A package (or a file in it) that none of the known places holds."""


def _is_workspace_root(path: Path) -> bool:
    return (path / 'colcon.meta').is_file() and (path / 'src' / 'dcdrl_core').is_dir()


def find_workspace_root() -> Path | None:
    """The DC-DRL workspace root (holds colcon.meta and src/dcdrl_core), or None.

    Order: $DCDRL_WORKSPACE (must be a workspace root, else ValueError), then the directories
    above this file (a source checkout), then the directories above the current directory.
    """
    configured = os.environ.get(WORKSPACE_ENV)
    if configured:
        root = Path(configured).expanduser().resolve()
        if not _is_workspace_root(root):
            raise ValueError(
                f'{WORKSPACE_ENV}={configured} is not a DC-DRL workspace root '
                '(expected colcon.meta and src/dcdrl_core in it)')
        return root
    for start in (_PACKAGE_DIR, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if _is_workspace_root(candidate):
                return candidate
    return None


def workspace_packages(root: Path | None = None) -> list[str]:
    """Names of the packages under <root>/src (directories with a package.xml)."""
    root = root if root is not None else find_workspace_root()
    if root is None:
        return []
    return sorted(p.parent.name for p in (root / 'src').glob('*/package.xml'))


def _ament_prefixes() -> list[Path]:
    value = os.environ.get('AMENT_PREFIX_PATH', '')
    return [Path(p) for p in value.split(os.pathsep) if p]


def _installed_share(package: str) -> Path | None:
    # ament_index: a prefix holds the package if share/ament_index/resource_index/packages/<pkg>
    # exists; its files are then in <prefix>/share/<pkg>.
    for prefix in _ament_prefixes():
        marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / package
        if marker.is_file():
            return prefix / 'share' / package
    wheel_share = Path(sys.prefix) / 'share' / package
    if (wheel_share / 'package.xml').is_file():
        return wheel_share
    return None


def find_package_share(package: str) -> Path:
    """The share directory of ``package`` (what ``$(find-pkg-share package)`` expands to).

    Installed packages come first, in AMENT_PREFIX_PATH order, then ``sys.prefix/share``; in a
    source checkout the workspace root stands in for every package in its src/ (launch/ and
    config/ live there once). Raises PackageNotFoundError naming the places looked at.
    """
    share = _installed_share(package)
    if share is not None:
        return share
    root = find_workspace_root()
    if root is not None and (root / 'src' / package / 'package.xml').is_file():
        return root
    prefixes = ', '.join(str(p) for p in _ament_prefixes()) or '(AMENT_PREFIX_PATH is empty)'
    raise PackageNotFoundError(
        f"package '{package}' not found: not in AMENT_PREFIX_PATH [{prefixes}], not in "
        f"{Path(sys.prefix) / 'share'}, and not in the workspace's src/ "
        f"({root if root is not None else 'no workspace found'}); source install/setup.bash "
        f'after colcon build, or set {WORKSPACE_ENV}')


def find_launch_file(package: str, filename: str) -> Path:
    """``share/<pkg>/launch/<filename>``, else ``<workspace root>/launch/<filename>``.

    Like ``ros2 launch``, a name not directly in launch/ is also searched for anywhere under
    the package's share directory. Raises PackageNotFoundError listing what was tried.
    """
    tried: list[str] = []
    share = _installed_share(package)
    if share is not None:
        direct = share / 'launch' / filename
        if direct.is_file():
            return direct
        tried.append(str(direct))
        found = sorted(p for p in share.rglob(Path(filename).name) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise PackageNotFoundError(
                f"'{filename}' is ambiguous in {share}: {', '.join(str(p) for p in found)}")
    root = find_workspace_root()
    if root is not None and (root / 'src' / package / 'package.xml').is_file():
        direct = root / 'launch' / filename
        if direct.is_file():
            return direct
        tried.append(str(direct))
    if not tried:
        find_package_share(package)  # raises the 'package not found' message
    raise PackageNotFoundError(
        f"launch file '{filename}' of package '{package}' not found; tried: {', '.join(tried)}")


def interface_search_path() -> list[Path]:
    """Directories ``d`` in which ``d/<pkg>/msg/*.msg`` and ``d/<pkg>/srv/*.srv`` are looked up.

    In order: $DCDRL_INTERFACE_PATH entries, each AMENT_PREFIX_PATH prefix's share/ (where
    rosidl installs the .msg files), the workspace's src/ (src/dcdrl_msgs/msg), and the
    standard interfaces shipped inside dcdrl_ros (dcdrl_ros/interfaces/). Only existing
    directories are listed, each once.
    """
    candidates: list[Path] = []
    configured = os.environ.get(INTERFACE_PATH_ENV, '')
    candidates += [Path(p).expanduser() for p in configured.split(os.pathsep) if p]
    candidates += [prefix / 'share' for prefix in _ament_prefixes()]
    try:
        root = find_workspace_root()
    except ValueError:
        root = None
    if root is not None:
        candidates.append(root / 'src')
    candidates.append(_PACKAGE_DIR / 'interfaces')
    result: list[Path] = []
    seen: set[Path] = set()
    for path in candidates:
        resolved = path.resolve()
        if resolved.is_dir() and resolved not in seen:
            seen.add(resolved)
            result.append(resolved)
    return result
