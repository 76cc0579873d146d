"""QoS profiles with rclpy's names, mapped onto Cyclone DDS the way rmw_cyclonedds_cpp does."""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from cyclonedds.core import Policy, Qos
from cyclonedds.util import duration


class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


class LivelinessPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    AUTOMATIC = 1
    MANUAL_BY_TOPIC = 3


@dataclass(frozen=True)
class Duration:
    """A ROS duration in seconds (only what QoS needs)."""

    seconds: float = 0.0

    @property
    def nanoseconds(self) -> int:
        return int(self.seconds * 1e9)


@dataclass
class QoSProfile:
    """rclpy.qos.QoSProfile: reliable, volatile, keep-last 10 unless told otherwise."""

    depth: int = 10
    history: HistoryPolicy = HistoryPolicy.KEEP_LAST
    reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE
    durability: DurabilityPolicy = DurabilityPolicy.VOLATILE
    deadline: Duration | None = None
    lifespan: Duration | None = None
    liveliness: LivelinessPolicy = LivelinessPolicy.SYSTEM_DEFAULT
    liveliness_lease_duration: Duration | None = None

    def __post_init__(self) -> None:
        if self.history == HistoryPolicy.KEEP_LAST and self.depth < 1:
            raise ValueError(f'QoS depth must be >= 1 for keep-last history, got {self.depth}')

    def to_dds(self) -> Qos:
        policies = []
        if self.history == HistoryPolicy.KEEP_ALL:
            policies.append(Policy.History.KeepAll)
        else:
            policies.append(Policy.History.KeepLast(self.depth))
        if self.reliability == ReliabilityPolicy.BEST_EFFORT:
            policies.append(Policy.Reliability.BestEffort)
        else:
            policies.append(Policy.Reliability.Reliable(max_blocking_time=duration(infinite=True)))
        if self.durability == DurabilityPolicy.TRANSIENT_LOCAL:
            # As rmw_cyclonedds_cpp: the durability service keeps what the history keeps.
            history = (Policy.History.KeepAll if self.history == HistoryPolicy.KEEP_ALL
                       else Policy.History.KeepLast(self.depth))
            policies.append(Policy.Durability.TransientLocal)
            policies.append(Policy.DurabilityService(
                cleanup_delay=0, history=history, max_samples=-1, max_instances=-1,
                max_samples_per_instance=-1))
        else:
            policies.append(Policy.Durability.Volatile)
        if self.deadline is not None:
            policies.append(Policy.Deadline(self.deadline.nanoseconds))
        if self.lifespan is not None:
            policies.append(Policy.Lifespan(self.lifespan.nanoseconds))
        if self.liveliness == LivelinessPolicy.MANUAL_BY_TOPIC:
            lease = self.liveliness_lease_duration
            policies.append(Policy.Liveliness.ManualByTopic(
                lease.nanoseconds if lease else duration(infinite=True)))
        elif self.liveliness_lease_duration is not None:
            policies.append(Policy.Liveliness.Automatic(self.liveliness_lease_duration.nanoseconds))
        policies.append(Policy.WriterDataLifecycle(autodispose=False))
        policies.append(Policy.DataRepresentation(use_cdrv0_representation=True))
        return Qos(*policies)


QoSLike = QoSProfile | int


def as_profile(qos: QoSLike) -> QoSProfile:
    """rclpy accepts a bare depth for a keep-last reliable profile."""
    if isinstance(qos, QoSProfile):
        return qos
    if isinstance(qos, int) and not isinstance(qos, bool):
        return QoSProfile(depth=qos)
    raise TypeError(f'expected a QoSProfile or a history depth, got {qos!r}')


qos_profile_system_default = QoSProfile()
qos_profile_services_default = QoSProfile(depth=10)
qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
qos_profile_parameters = QoSProfile(depth=1000)
qos_profile_parameter_events = QoSProfile(depth=1000)  # rmw's: reliable, volatile, keep-last 1000
# Latched "last value" topics, as rclpy users write it for maps and weights.
qos_profile_transient_local = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def with_depth(profile: QoSProfile, depth: int) -> QoSProfile:
    return replace(profile, depth=depth)
