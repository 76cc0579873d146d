"""DC-DRL simulation: gymnasium environments with no ROS import.

Importing this package registers the environments, so that
``gymnasium.make("dcdrl_sim/MecOffload-v0")`` works, without importing gymnasium itself: an edge
device runs the plain plant and task models (cartpole.swingup, face.model) with numpy alone, and
may have no gymnasium at all. When gymnasium is already loaded the ids are registered now;
otherwise they are registered the moment gymnasium finishes loading, whichever comes first.
"""
import importlib.abc
import importlib.util
import sys


def _register() -> None:
    from dcdrl_sim.registration import register_envs
    register_envs()


class _RegisterWhenGymnasiumLoads(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it lets the normal finders locate gymnasium, then registers after it executes."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'gymnasium':
            return None
        sys.meta_path.remove(self)   # one shot; also keeps find_spec below from finding us again
        spec = importlib.util.find_spec('gymnasium')
        loader = getattr(spec, 'loader', None)
        if loader is None or not hasattr(loader, 'exec_module'):
            return spec
        execute = loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            _register()

        loader.exec_module = exec_module
        return spec


if 'gymnasium' in sys.modules:
    _register()
elif not any(isinstance(finder, _RegisterWhenGymnasiumLoads) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenGymnasiumLoads())
