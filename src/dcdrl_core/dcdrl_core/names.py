"""Where the DC-DRL graph's names live.

Every DC-DRL node is created in ``DEFAULT_NAMESPACE`` and uses relative topic and service names,
so ``ros2 run dcdrl_edge controller`` and ``dcdrl run dcdrl_edge controller`` publish
/dcdrl/edge/stats, as the launch files (``push_ros_namespace: dcdrl``), rqt_plot commands and
docs/architecture.md show. A namespace given at start wins on both backends, as in rcl:
``--ros-args -r __ns:=/robot1`` (a launch file's namespace is passed that way too).
The demo talker and listener keep ROS 2's root namespace (/chatter, like demo_nodes_py).
"""

DEFAULT_NAMESPACE = '/dcdrl'
