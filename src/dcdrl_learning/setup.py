"""DC-DRL learning blocks: networks, agents, replay, weight codec, checkpoints, merge, run logs."""
from setuptools import find_packages, setup

package_name = 'dcdrl_learning'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    # Third-party only: the sibling packages come from this repository (never from an index). numpy and the
    # codec's safetensors for every node (the edge decodes weights with numpy alone).
    install_requires=['setuptools', 'numpy>=1.26,<3', 'safetensors>=0.4'],
    zip_safe=True,
    maintainer='DC-DRL developers',
    maintainer_email='dcdrl@example.invalid',
    description='DC-DRL learning blocks: networks, agents, replay, weight codec, checkpoints, merge, run logs.',
    license='Apache-2.0',
    # colcon test runs pytest where the 'test' extra names it (setuptools >= 72 drops tests_require).
    # torch: agents, checkpoints, run logs, networks.py, torch_codec.py: cloud only.
    extras_require={'test': ['pytest'], 'torch': ['torch>=2.2', 'tensorboard>=2.15']},
)
