"""`colcon build` of the four Python packages works without ROS 2 (colcon from PyPI).

dcdrl_msgs is an ament_cmake/rosidl package that needs ROS 2; it is left out with
--packages-ignore (with --packages-skip colcon still wants its install/ as a dependency).
The installed tree must then serve `dcdrl launch` through AMENT_PREFIX_PATH, as ROS 2 does.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_PACKAGES = ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud')


def _colcon() -> str:
    candidate = Path(sys.executable).with_name('colcon')
    return str(candidate) if candidate.exists() else (shutil.which('colcon') or '')


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    colcon = _colcon()
    if not colcon:
        pytest.skip('colcon is not installed (pip install colcon-common-extensions)')
    base = tmp_path_factory.mktemp('colcon')
    result = subprocess.run(
        [colcon, '--log-base', str(base / 'log'), 'build', '--base-paths', 'src',
         '--packages-ignore', 'dcdrl_msgs', '--build-base', str(base / 'build'),
         '--install-base', str(base / 'install')],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return base / 'install'


def test_every_python_package_is_installed_with_its_share_files(install):
    for package in PYTHON_PACKAGES:
        share = install / package / 'share' / package
        assert (share / 'package.xml').is_file(), package
        assert (install / package / 'share' / 'ament_index' / 'resource_index' / 'packages' / package).is_file()
    launch_dir = install / 'dcdrl_cloud' / 'share' / 'dcdrl_cloud' / 'launch'
    launch_files = {p.name for p in launch_dir.glob('*.launch.yaml')}
    assert 'stream_demo.launch.yaml' in launch_files
    assert (install / 'dcdrl_cloud' / 'share' / 'dcdrl_cloud' / 'launch' / 'stream_demo.launch.py').is_file()
    assert (install / 'dcdrl_cloud' / 'share' / 'dcdrl_cloud' / 'config' / 'stream_demo.yaml').is_file()
    assert (install / 'dcdrl_ros' / 'share' / 'dcdrl_ros' / 'launch' / 'talker_listener.launch.yaml').is_file()
    site = next((install / 'dcdrl_ros' / 'lib').glob('python3*/site-packages'))
    assert (site / 'dcdrl_ros' / 'interfaces' / 'std_msgs' / 'msg' / 'String.msg').is_file()


def test_node_executables_are_where_ros2_run_looks(install):
    for package, executable in (('dcdrl_sim', 'client'), ('dcdrl_cloud', 'replay_buffer'),
                                ('dcdrl_ros', 'talker'), ('dcdrl_ros', 'listener')):
        path = install / package / 'lib' / package / executable
        assert path.is_file() and os.access(path, os.X_OK), path


def test_dcdrl_launch_finds_the_installed_files(install):
    env = dict(os.environ)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(str(install / p) for p in PYTHON_PACKAGES)
    result = subprocess.run(
        [sys.executable, '-m', 'dcdrl_ros.cli', 'launch', '--print', 'dcdrl_cloud', 'stream_demo.launch.yaml'],
        cwd=str(install), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = install / 'dcdrl_cloud' / 'share' / 'dcdrl_cloud' / 'config' / 'stream_demo.yaml'
    assert f'--params-file {config}' in result.stdout
