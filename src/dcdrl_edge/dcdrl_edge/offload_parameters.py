"""The offload controller node's parameters: OffloadConfig's (the logic's) and the node's own; no ROS import."""
from __future__ import annotations

from dataclasses import dataclass, fields

from dcdrl_ros.parameter_dataclass import parameter

from .faces import MODELS
from .images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from .offload_config import ACTOR_ENV_DIMS, OffloadConfig


@dataclass
class OffloadParameters(OffloadConfig):
    """Every parameter of `ros2 run dcdrl_edge offload_controller` (dcdrl_ros.parameter_dataclass)."""

    device_id: str = parameter('', "name in experience, records and stats; '' = the node name")
    env_id: str = parameter('dcdrl_sim/FaceOffloadContinuous-v0', 'the env the cloud trains on: sizes the actor',
                            choices=tuple(ACTOR_ENV_DIMS))
    network_preset: str = parameter('dcdrl', "actor network preset (the learner's)")
    weights_file: str = parameter('', "actor weights (.safetensors) to start with; the cloud's newer weights "
                                      "replace them")
    known_faces_dir: str = parameter('', "local recognition: enrolment folder ('' = nobody known)")
    face_model: str = parameter('hog', 'local recognition: detector', choices=MODELS)
    upsample: int = parameter(1, 'local recognition: detector up-sampling', low=0)
    tolerance: float = parameter(0.5, 'face distance threshold, local and sent with each request', above=0.0,
                                 high=1.0, live=True)
    worker_start_timeout_s: float = parameter(60.0, 'the local worker must be ready (models loaded) within this',
                                              above=0.0)
    link_bandwidth_mbps: float = parameter(0.0, 'emulated link for offloads (Mbit/s); 0 = none', low=0.0)
    link_schedule: str = parameter('', "'0:20,30:2,60:10': from t s on, that many Mbit/s (0 = none); overrides "
                                       "the constant")
    max_image_bytes: int = parameter(DEFAULT_MAX_BYTES, 'larger compressed frames are refused (bad_frames)', low=1)
    max_pixels: int = parameter(DEFAULT_MAX_PIXELS, 'larger decoded frames are refused (bad_frames)', low=1)
    timeout_check_period_s: float = parameter(0.05, 'how often offloads are checked against offload_timeout_s',
                                              above=0.0)
    record_depth: int = parameter(100, 'keep-last depth of the offload_records publisher', low=1)
    experience_depth: int = parameter(100, 'keep-last depth of the experience publisher', low=1)
    progress_period_s: float = parameter(10.0, 'a progress line on the log; 0 = off', low=0.0, live=True)

    def _check_device_id(self) -> None:
        pass   # '' = the node's name: config() fills it in

    def config(self, node_name: str) -> OffloadConfig:
        """The logic's OffloadConfig (device_id '' becomes ``node_name``)."""
        values = {item.name: getattr(self, item.name) for item in fields(OffloadConfig)}
        values['device_id'] = self.device_id or node_name
        return OffloadConfig(**values)


__all__ = ['OffloadParameters']
