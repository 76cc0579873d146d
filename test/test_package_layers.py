"""The packages' layering holds: dcdrl_core and dcdrl_ros import no other DC-DRL package and neither torch nor
gymnasium; dcdrl_learning imports no node package (docs/architecture.md, "Packages")."""
import json
import os
import subprocess
import sys

import pytest

# Imports every module of a package and lists the top-level packages that came with them.
CHILD = '''
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = sorted(m.name for m in pkgutil.walk_packages(package.__path__, sys.argv[1] + '.'))
for name in names:
    importlib.import_module(name)
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
'''
DCDRL = {'dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud'}
CLOUD_ONLY = {'torch', 'gymnasium'}


def loaded_packages(package):
    out = subprocess.run([sys.executable, '-c', CHILD, package], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize('package', ['dcdrl_core', 'dcdrl_ros'])
def test_the_bottom_packages_stand_alone(package):
    loaded = loaded_packages(package)
    assert loaded & DCDRL == {package}
    assert not loaded & CLOUD_ONLY


def test_the_learning_blocks_use_no_node_package():
    loaded = loaded_packages('dcdrl_learning')
    assert loaded & DCDRL <= {'dcdrl_core', 'dcdrl_ros', 'dcdrl_learning'}
