"""ROS 2 YAML launch files without ROS 2: parser, evaluator and process runner of `dcdrl launch`.

The files are the ones `ros2 launch` reads (launch_yaml + launch_ros actions); see
docs/launch-and-params.md for the supported subset.
"""
from .context import DeclaredArgument, LaunchContext, ProcessSpec
from .description import (
                          LaunchDescription,
                          execute_description,
                          load_launch_file,
                          parse_cmdline,
                          parse_launch_text,
                          resolve_frontend_file,
)
from .main import declared_arguments, locate_launch_file, main, parse_launch_arguments
from .runner import LaunchRunner
from .substitutions import LaunchError, evaluate, parse_template

__all__ = [
    'DeclaredArgument', 'LaunchContext', 'LaunchDescription', 'LaunchError', 'LaunchRunner', 'ProcessSpec',
    'declared_arguments', 'evaluate', 'execute_description', 'load_launch_file', 'locate_launch_file',
    'main', 'parse_cmdline', 'parse_launch_arguments', 'parse_launch_text', 'parse_template',
    'resolve_frontend_file',
]
