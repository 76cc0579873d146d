"""DC-DRL's ROS 2 layer: node runtime (rclpy or Cyclone DDS), interfaces, parameters, launch, the dcdrl CLI."""
import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'dcdrl_ros'
# Launch and parameter files live once at the workspace root; each package installs
# the ones it owns into share/<pkg>/ so that 'ros2 launch dcdrl_ros ...' finds them.
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def shared(pattern):
    return sorted(os.path.relpath(p) for p in glob(os.path.join(root, pattern)))


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    include_package_data=True,
    # The standard .msg/.srv files the ROS-free runtime reads (installed with the Python code).
    package_data={package_name: ['interfaces/README.md', 'interfaces/*/msg/*.msg', 'interfaces/*/srv/*.srv']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', shared('launch/talker_listener*')),
    ],
    # Third-party only: the sibling packages come from this repository (never from an index). numpy for the
    # message arrays, PyYAML for parameter and launch files, cyclonedds for our runtime (rclpy users get rclpy
    # from ROS).
    # mcap + zstandard: `dcdrl bag` on a pip-only machine (pure Python; zstandard has wheels for the Pi too).
    install_requires=['setuptools', 'numpy>=1.26,<3', 'PyYAML>=6.0', 'cyclonedds>=11.0.1,<12', 'mcap>=1.2',
                      'zstandard>=0.22'],
    zip_safe=True,
    maintainer='DC-DRL developers',
    maintainer_email='dcdrl@example.invalid',
    description=('DC-DRL ROS 2 layer: node runtime (rclpy or Cyclone DDS), interfaces, parameters, launch, '
                 'the dcdrl CLI.'),
    license='Apache-2.0',
    # colcon test runs pytest where the 'test' extra names it (setuptools >= 72 drops tests_require).
    # foxglove: `dcdrl foxglove` (a native wheel, so not forced on every install).
    extras_require={'test': ['pytest'], 'foxglove': ['foxglove-sdk>=0.30,<0.31']},
    entry_points={
        'console_scripts': [
            'dcdrl = dcdrl_ros.cli:main',
            'talker = dcdrl_ros.demo_nodes:talker_main',
            'listener = dcdrl_ros.demo_nodes:listener_main',
            'bag_recorder = dcdrl_ros.bag.recorder:main',
        ],
    },
)
