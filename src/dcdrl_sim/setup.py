"""DC-DRL simulation: gymnasium environments, baselines, oracle, simulated client node."""
import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'dcdrl_sim'
# Launch and parameter files live once at the workspace root; each package installs
# the ones it owns into share/<pkg>/ so that 'ros2 launch dcdrl_sim ...' finds them.
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
        ('share/' + package_name + '/launch', shared('launch/*sim*')),
    ],
    # Third-party only: the sibling packages come from this repository (never from an index). The plain
    # plant and task models need numpy alone; the gymnasium envs (and the client node's learning) are extras.
    install_requires=['setuptools', 'numpy>=1.26,<3'],
    zip_safe=True,
    maintainer='DC-DRL developers',
    maintainer_email='dcdrl@example.invalid',
    description='DC-DRL simulation: gymnasium environments, baselines, oracle, simulated client node.',
    license='Apache-2.0',
    # colcon test runs pytest where the 'test' extra names it (setuptools >= 72 drops tests_require).
    extras_require={'test': ['pytest'], 'gym': ['gymnasium>=1.0,<2'], 'torch': ['torch>=2.2']},
    entry_points={
        'console_scripts': [
            'client = dcdrl_sim.client_node:main',
        ],
    },
)
