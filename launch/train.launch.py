"""ROS 2 wrapper: `ros2 launch dcdrl_cloud train.launch.py [num_clients:=2] [mode:=central|collective]
[duration_s:=240.0] ...`.

The graph and its arguments are train.launch.yaml (installed next to this file), which `dcdrl launch`
reads without ROS 2; this file only includes it. Arguments given on the command line reach the
included file, and `ros2 launch --show-args` lists its arguments (the path is plain text, so launch
can follow the include without running it).
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import FrontendLaunchDescriptionSource


def generate_launch_description() -> LaunchDescription:
    graph = Path(__file__).with_name('train.launch.yaml')
    return LaunchDescription([IncludeLaunchDescription(FrontendLaunchDescriptionSource(str(graph)))])
