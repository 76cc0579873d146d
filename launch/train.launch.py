"""ROS 2 wrapper: `ros2 launch dcdrl_cloud train.launch.py [num_clients:=2] [mode:=central|collective] [duration_s:=300.0] ...`.

The graph itself is train.launch.yaml (installed next to this file), which `dcdrl launch`
reads without ROS 2; this file only declares the same arguments and includes it.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import FrontendLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    'num_clients': ('2', 'simulated clients, 1 to 4'),
    'env_id': ('dcdrl_sim/MecOffload-v0', 'gymnasium id the clients explore'),
    'mode': ('central', 'central: clients act, the learner trains | collective: DC-DRL'),
    'duration_s': ('300.0', "training time of the learner (s); 0 = until stopped"),
    'output_dir': ('runs/train', 'checkpoints, replay snapshot, evaluation, logs'),
    'seed': ('0', 'seed of the run (clients use 1<seed><k>)'),
    'gamma': ('0.9', 'discount, shared by replay buffer, learner and clients'),
    'network_preset': ('dcdrl', 'network preset (dcdrl or cloud_edge)'),
    'expected_models': ('3', 'collective: submissions that close a generation (clients + learner)'),
    'params_file': (PathJoinSubstitution([FindPackageShare('dcdrl_cloud'), 'config', 'train.yaml']),
                    'ROS 2 parameter file'),
}


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in ARGUMENTS.items()]
    include = IncludeLaunchDescription(
        FrontendLaunchDescriptionSource(PathJoinSubstitution([ThisLaunchFileDir(), 'train.launch.yaml'])),
        launch_arguments={name: LaunchConfiguration(name) for name in ARGUMENTS}.items())
    return LaunchDescription(declared + [include])
