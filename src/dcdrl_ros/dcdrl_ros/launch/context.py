"""State while a launch description is evaluated, and what evaluation produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ProcessSpec:
    """One process to start: the result of evaluating a ``node`` or ``executable`` action."""

    label: str  # 'talker' (the runner appends '-1', '-2' like ros2 launch)
    cmd: list[str]
    env: dict[str, str]
    cwd: str | None = None
    output: str = 'log'  # 'screen' | 'log' | 'both' (ros2 launch's default is 'log')
    respawn: bool = False
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1  # -1: no limit
    on_exit_shutdown: bool = False
    sigterm_timeout: float | None = None  # None: the runner's grace period
    sigkill_timeout: float | None = None
    node_name: str | None = None  # fully qualified, for nodes with a name
    where: str = ''  # 'file.launch.yaml, line 12'


@dataclass
class DeclaredArgument:
    name: str
    default: str | None  # the default as written (may hold substitutions)
    description: str
    choices: list[str] | None
    where: str


@dataclass
class LaunchContext:
    """Launch configurations (arguments, ``let``), the environment, the current file."""

    configurations: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    initial_environment: dict[str, str] = field(default_factory=dict)  # for groups with forwarding: false
    launch_file: Path | None = None
    anonymous_names: dict[str, str] = field(default_factory=dict)
    processes: list[ProcessSpec] = field(default_factory=list)
    declared_arguments: list[DeclaredArgument] = field(default_factory=list)
    include_depth: int = 0

    @property
    def ros_namespace(self) -> str | None:
        # launch_ros keeps the pushed namespace in this launch configuration too.
        return self.configurations.get('ros_namespace')
