"""colcon on the real ROS 2, as a ROS 2 user builds and tests this workspace: `colcon build` of all seven
packages (the `ros2_ws` fixture; dcdrl_msgs by rosidl), then `colcon test` (pytest in each Python
package) and `colcon test-result`.

The suite runs every package test itself, so `colcon test` runs here on a selection that proves the
machinery in every package: pytest is chosen (the 'test' extra), and in a process where rclpy and the
rosidl classes are importable the tests still drive our runtime with our classes (the package
conftest), on DDS too, while the rclpy side runs in a child (wire conformance). The full
`colcon test` is measured by hand (docs/launch-and-params.md).
test/test_colcon_build.py checks the ROS-free colcon (from PyPI, dcdrl_msgs left out).
"""
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
# Per package, test modules that use our message classes (and our runtime on DDS) and would break
# if the rosidl classes won; dcdrl_ros's wire conformance also runs its rclpy child.
SELECTED = {
    'dcdrl_ros': ('test_wire_conformance',),
    'dcdrl_learning': ('test_experience',),
    'dcdrl_sim': ('test_client_node',),
    'dcdrl_edge': ('test_images', 'test_face_nodes'),
    'dcdrl_cloud': ('test_ingest', 'test_replay_buffer_node'),
}


def test_interfaces_are_importable_from_the_colcon_install(ros2_ws):
    from dcdrl_ros.messages import get_interface
    script = ('from dcdrl_msgs.msg import ExperienceBatch\n'
              'from dcdrl_msgs.srv import GetPolicy\n'
              'from rclpy.serialization import serialize_message\n'
              'request = GetPolicy.Request(architecture_id="mlp", min_version=7)\n'
              'print(type(ExperienceBatch).__name__, type(GetPolicy).__name__, serialize_message(request).hex())\n')
    done = subprocess.run([ros2_ws.python(), '-c', script], env=ros2_ws.environment(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = get_interface('dcdrl_msgs/srv/GetPolicy').Request(architecture_id='mlp', min_version=7)
    # rosidl's generated classes (their metaclasses), which serialise as ours do.
    assert done.stdout.split() == ['Metaclass_ExperienceBatch', 'Metaclass_GetPolicy', ours.serialize().hex()]


@pytest.fixture(scope='module')
def colcon_test(ros2_ws, tmp_path_factory):
    """`colcon test` of the Python packages on the install of ros2_ws; (results folder, output)."""
    base = tmp_path_factory.mktemp('colcon_test')
    env = ros2_ws.environment()
    results = base / 'test_results'
    done = subprocess.run(
        ['colcon', '--log-base', str(base / 'log'), 'test', '--base-paths', str(ROOT / 'src'),
         '--build-base', str(base / 'build'), '--install-base', str(ros2_ws.install),
         '--test-result-base', str(results), '--packages-select', *SELECTED,
         '--event-handlers', 'console_cohesion+',
         '--pytest-args', '-k', ' or '.join(module for modules in SELECTED.values() for module in modules)],
        cwd=str(base), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return results, done.stdout


def test_colcon_test_runs_every_package_with_pytest_and_passes(colcon_test):
    results, output = colcon_test
    for package, modules in SELECTED.items():
        junit = results / package / 'pytest.xml'
        assert junit.is_file(), f'{package}: no pytest result (colcon fell back to unittest?)\n{output[-3000:]}'
        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == 'testsuite' else suite.find('testsuite')
        counts = {key: int(suite.get(key)) for key in ('tests', 'failures', 'errors', 'skipped')}
        cases = list(suite.iter('testcase'))
        failed = [f"{case.get('classname')}::{case.get('name')}: {(problem.get('message') or '')[:300]}"
                  for case in cases for problem in case if problem.tag in ('failure', 'error')]
        assert not failed and counts['errors'] == 0, (package, counts, failed)
        ran = {case.get('classname').split('.')[-1] for case in cases}
        assert set(modules) <= ran, (package, sorted(ran))
        # Nothing that needs ROS 2 may skip here, where ROS 2 is sourced.
        assert counts['skipped'] == 0, (package, counts, [case.get('name') for case in cases
                                                          if case.find('skipped') is not None])


def test_colcon_test_result_reports_no_failure(colcon_test, ros2_ws):
    results, _ = colcon_test
    done = subprocess.run(['colcon', 'test-result', '--test-result-base', str(results), '--all'],
                          env=ros2_ws.environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert ' 0 errors, 0 failures' in summary, summary
