"""Makes the workspace's packages importable from the source tree (no install needed)."""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
_SRC = [os.path.join(ROOT, 'src', p) for p in ('dcdrl_core', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud')]
for path in reversed(_SRC):
    if path not in sys.path:
        sys.path.insert(0, path)
# Child processes started by tests import the same source tree.
os.environ['PYTHONPATH'] = os.pathsep.join(_SRC + [os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep)
