"""ROS 2 wrapper: `ros2 launch dcdrl_cloud stream_demo.launch.py [num_envs:=8] [env_id:=...]`.

The graph itself is stream_demo.launch.yaml (installed next to this file), which `dcdrl launch`
reads without ROS 2; this file only declares the same arguments and includes it.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import FrontendLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    'num_envs': ('4', 'environment copies each client steps in lock-step'),
    'env_id': ('dcdrl_sim/MecOffload-v0', 'gymnasium id of the environment the clients explore'),
    'params_file': (PathJoinSubstitution([FindPackageShare('dcdrl_cloud'), 'config', 'stream_demo.yaml']),
                    'ROS 2 parameter file for the clients and the replay buffer'),
}


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in ARGUMENTS.items()]
    include = IncludeLaunchDescription(
        FrontendLaunchDescriptionSource(PathJoinSubstitution([ThisLaunchFileDir(), 'stream_demo.launch.yaml'])),
        launch_arguments={name: LaunchConfiguration(name) for name in ARGUMENTS}.items())
    return LaunchDescription(declared + [include])
