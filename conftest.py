"""Makes the workspace's packages importable from the source tree (no install needed)."""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
_SRC = [os.path.join(ROOT, 'src', p)
        for p in ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud')]
for path in reversed(_SRC):
    if path not in sys.path:
        sys.path.insert(0, path)
# Child processes started by tests import the same source tree.
os.environ['PYTHONPATH'] = os.pathsep.join(_SRC + [os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep)


import pytest  # noqa: E402  (after the sys.path set-up above)


@pytest.fixture
def loopback_graph(monkeypatch):
    """A fresh DDS domain on loopback and a context of ours in it: (domain_id, context).

    Child nodes started with dcdrl_ros.testing.loopback_env(domain_id) discover this context.
    """
    from dcdrl_ros.runtime.context import Context
    from dcdrl_ros.testing import fresh_domain_id
    domain = fresh_domain_id()
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    context = Context()
    context.init([], domain_id=domain)
    yield domain, context
    context.shutdown()


@pytest.fixture
def domain(monkeypatch):
    """A fresh DDS domain id; this process discovers the way loopback_env's children do (loopback unicast)."""
    from dcdrl_ros.testing import fresh_domain_id
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return fresh_domain_id()


# --- the real ROS 2 (dcdrl_ros.ros2_install says where it comes from) -------------------------------

@pytest.fixture(scope='session')
def ros2():
    """The real ROS 2 to run rclpy nodes and `ros2` verbs in child processes; skips where there is none,
    fails instead where DCDRL_REQUIRE_ROS2=1 (make test with the ROS 2 tarballs, CI)."""
    from dcdrl_ros import ros2_install
    found, why = ros2_install.cached()
    if found is None:
        if ros2_install.required():
            pytest.fail(f'{ros2_install.REQUIRE_VAR}=1 but {why}', pytrace=False)
        pytest.skip(why)
    return found


@pytest.fixture(scope='session')
def ros2_ws(ros2):
    """This workspace built by colcon on that ROS 2 (all five packages, dcdrl_msgs by rosidl); cached in
    .ros2/ws-<hash of the sources>."""
    from dcdrl_ros import ros2_install
    return ros2_install.Workspace(ros2, ros2_install.build_workspace(ros2))
