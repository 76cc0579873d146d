"""DC-DRL core: protocol constants, argument checks, graph names, training defaults, atomic files, strict JSON."""
from setuptools import find_packages, setup

package_name = 'dcdrl_core'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    # Third-party only; numpy for strict JSON's numpy scalars (protocol.py itself needs the standard library alone).
    install_requires=['setuptools', 'numpy>=1.26,<3'],
    zip_safe=True,
    maintainer='DC-DRL developers',
    maintainer_email='dcdrl@example.invalid',
    description=('DC-DRL core: protocol constants, argument checks, graph names, training defaults, atomic files, '
                 'strict JSON.'),
    license='Apache-2.0',
    # colcon test runs pytest where the 'test' extra names it (setuptools >= 72 drops tests_require).
    extras_require={'test': ['pytest']},
)
