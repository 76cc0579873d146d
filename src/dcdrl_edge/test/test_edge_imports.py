"""The edge's modules load neither torch nor gymnasium: a Raspberry Pi has no torch (or a 700 MB one)."""
import json
import os
import subprocess
import sys

# Imports the modules one by one and reports which of them brought a cloud-only package in first.
CHILD = '''
import importlib, json, pkgutil, sys
names = sys.argv[2:] or sorted(m.name for m in pkgutil.iter_modules(importlib.import_module(sys.argv[1]).__path__,
                                                                     sys.argv[1] + '.'))
culprits = {}
for name in names:
    importlib.import_module(name)
    found = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'gymnasium'))
    if found and not culprits:
        culprits[name] = found[:3]
print(json.dumps({'imported': names, 'culprits': culprits}))
'''


def import_in_child(package, *modules):
    out = subprocess.run([sys.executable, '-c', CHILD, package, *modules], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_edge_module_imports_without_torch_or_gymnasium():
    """The controller (sim and topic plants, train and eval modes), the camera, the offload controller, the face
    server: every module of dcdrl_edge, whatever its name after a move."""
    result = import_in_child('dcdrl_edge')
    assert {'dcdrl_edge.controller', 'dcdrl_edge.controller_node', 'dcdrl_edge.camera_node',
            'dcdrl_edge.offload'} <= set(result['imported'])
    assert result['culprits'] == {}


def test_the_check_sees_a_cloud_import():
    """The child's report is real: a module that uses torch is named."""
    result = import_in_child('dcdrl_learning', 'dcdrl_learning.network_spec', 'dcdrl_learning.networks')
    assert list(result['culprits']) == ['dcdrl_learning.networks']
