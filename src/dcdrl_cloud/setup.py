"""DC-DRL cloud: learner, replay buffer, parameter server, training launch files."""
import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'dcdrl_cloud'
# Launch and parameter files live once at the workspace root; each package installs
# the ones it owns into share/<pkg>/ so that 'ros2 launch dcdrl_cloud ...' finds them.
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def shared(pattern):
    return sorted(os.path.relpath(p) for p in glob(os.path.join(root, pattern)))


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    include_package_data=True,
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', shared('launch/*.launch.*')),
        ('share/' + package_name + '/config', shared('config/*.yaml')),
    ],
    # Third-party only: the sibling packages come from this repository (never from an index); install
    # them with dcdrl_learning[torch] and dcdrl_sim[gym] (README, cloud profile).
    install_requires=['setuptools', 'numpy>=1.26,<3', 'PyYAML>=6.0', 'torch>=2.2', 'gymnasium>=1.0,<2',
                      'tensorboard>=2.15', 'matplotlib>=3.8'],
    zip_safe=True,
    maintainer='DC-DRL developers',
    maintainer_email='dcdrl@example.invalid',
    description='DC-DRL cloud: learner, replay buffer, parameter server, training launch files.',
    license='Apache-2.0',
    # colcon test runs pytest where the 'test' extra names it (setuptools >= 72 drops tests_require).
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'replay_buffer = dcdrl_cloud.replay_buffer_node:main',
            'learner = dcdrl_cloud.learner_node:main',
            'segment_learner = dcdrl_cloud.segment_learner_node:main',
            'parameter_server = dcdrl_cloud.parameter_server_node:main',
            'scope = dcdrl_cloud.scope_node:main',
            'train = dcdrl_cloud.main_job:main',  # make run's job: ros2 run / dcdrl run dcdrl_cloud train
        ],
    },
)
