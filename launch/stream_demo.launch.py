"""ROS 2 wrapper: `ros2 launch dcdrl_cloud stream_demo.launch.py [num_envs:=8] [env_id:=...]`.

The graph and its arguments are stream_demo.launch.yaml (installed next to this file), which
`dcdrl launch` reads without ROS 2; this file only includes it. Arguments given on the command line
reach the included file, and `ros2 launch --show-args` lists its arguments (the path is plain text,
so launch can follow the include without running it).
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import FrontendLaunchDescriptionSource


def generate_launch_description() -> LaunchDescription:
    graph = Path(__file__).with_name('stream_demo.launch.yaml')
    return LaunchDescription([IncludeLaunchDescription(FrontendLaunchDescriptionSource(str(graph)))])
