"""DC-DRL edge: real-time controller, camera, face recognition worker and server."""
import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'dcdrl_edge'
# Launch and parameter files live once at the workspace root; each package installs
# the ones it owns into share/<pkg>/ so that 'ros2 launch dcdrl_edge ...' finds them.
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
        ('share/' + package_name + '/launch', shared('launch/*edge*') + shared('launch/*device*')),
        ('share/' + package_name + '/config', shared('config/*.yaml')),
    ],
    # Third-party only: the sibling packages come from this repository (never from an index). No torch,
    # no gymnasium: the device profile (README) is numpy + the camera extra (+ face for local recognition).
    install_requires=['setuptools', 'numpy>=1.26,<3'],
    zip_safe=True,
    maintainer='DC-DRL developers',
    maintainer_email='dcdrl@example.invalid',
    description='DC-DRL edge: real-time controller, camera, face recognition worker and server.',
    license='Apache-2.0',
    # colcon test runs pytest where the 'test' extra names it (setuptools >= 72 drops tests_require).
    # camera: OpenCV 4 (cv_bridge fails with 5); synthetic: the shipped test photograph (scikit-image);
    # face: dlib prebuilt for face_recognition, which is installed with --no-deps (it pins the source dlib).
    extras_require={'test': ['pytest'], 'camera': ['opencv-python-headless>=4.8,<5'],
                    'synthetic': ['scikit-image>=0.22'],
                    'face': ['dlib-bin>=19.24', 'face-recognition-models>=0.3.0', 'Pillow>=10',
                             'opencv-python-headless>=4.8,<5']},
    entry_points={
        'console_scripts': [
            'controller = dcdrl_edge.controller_node:main',
            'offload_controller = dcdrl_edge.offload_node:main',
            'camera = dcdrl_edge.camera_node:main',
            'face_server = dcdrl_edge.face_server_node:main',
        ],
    },
)
