"""This package's tests run on our runtime and message classes, also under `colcon test` on a
sourced ROS 2 (see dcdrl_ros.testing.use_our_runtime)."""
from dcdrl_ros.testing import use_our_runtime

use_our_runtime()
