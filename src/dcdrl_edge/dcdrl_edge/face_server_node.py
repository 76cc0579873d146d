"""`ros2 run dcdrl_edge face_server`: the recognise-faces service of the edge host.

Thin adapter over dcdrl_edge.face_server (the checks and refusal reasons are described there
and in docs/face-testbed.md). Known faces are enrolled once at start from ``known_faces_dir``.
A refused request gets ok=false with a one-line error, is counted by reason and logged
(throttled); the node keeps serving. On shutdown it prints 'FACE_SERVER REPORT {json}'.

Service (relative; in /dcdrl unless started with -r __ns:=/other):
  recognize_faces  dcdrl_msgs/srv/RecognizeFaces  CompressedImage (JPEG or PNG) + tolerance
                   (<= 0: the server's) -> ok, error, names, boxes (top, right, bottom, left
                   per face), compute_time_s (server CPU time of decode + recognition)

Parameters: the fields of dcdrl_edge.face_server.FaceServerConfig (their table is in
docs/face-testbed.md; `face_server --help` lists them).

Concurrency: under rclpy the node spins a MultiThreadedExecutor with ``max_concurrent + 1``
threads and a reentrant callback group, so up to ``max_concurrent`` requests are admitted at
once and one more thread is free to refuse the next as 'busy' straight away. Our Cyclone runtime runs
callbacks on one thread (docs/runtime.md: its MultiThreadedExecutor is the single-threaded
one), so there requests are answered one at a time in arrival order and wait in the service's
DDS reader; 'busy' does not occur. Clients bound their wait with their own time-out.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_edge.face_server import FaceServerConfig, FaceServerLogic
from dcdrl_edge.images import compressed_bytes
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters
from dcdrl_ros.msg_arrays import set_array
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.srv import RecognizeFaces


class FaceServerNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('face_server', namespace=DEFAULT_NAMESPACE)
        # Live: the default tolerance (its limits are the field's); the model, limits and enrolment are read at start.
        self.live = LiveParameters({'tolerance': Live(apply=lambda value: self.logic.set_tolerance(value))})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        self.config = declare_parameters(self, FaceServerConfig, self.live)
        started = time.monotonic()
        self.logic = FaceServerLogic(self.config)
        assert self.logic.engine is not None
        known = self.logic.engine.known
        for path, why in known.skipped.items():
            self.get_logger().warning(f'enrolment skipped {path}: {why}')
        options: dict[str, Any] = {}
        if ros.BACKEND == 'rclpy':  # let the multi-threaded executor run requests side by side
            from rclpy.callback_groups import ReentrantCallbackGroup
            options['callback_group'] = ReentrantCallbackGroup()
        self.create_service(RecognizeFaces, 'recognize_faces', self.on_request, **options)
        c = self.config
        people = ', '.join(known.people) or 'nobody'
        self.get_logger().info(
            f'face_server started: {len(known)} known faces ({people}) enrolled in '
            f'{time.monotonic() - started:.1f} s, model {c.model}, upsample {c.upsample}, tolerance {c.tolerance:g}, '
            f'limits {c.max_image_bytes} bytes / {c.max_pixels} pixels, max_concurrent {c.max_concurrent}')

    def on_request(self, request: RecognizeFaces.Request, response: RecognizeFaces.Response
                   ) -> RecognizeFaces.Response:
        answer = self.logic.handle(compressed_bytes(request.image), request.image.format, request.tolerance)
        response.ok = answer.ok
        response.error = answer.error
        response.names = list(answer.names)
        set_array(response, 'boxes', np.asarray(answer.boxes, dtype=np.int32), np.int32)
        response.compute_time_s = float(answer.compute_time_s)
        if answer.ok:
            self.get_logger().info(f'answered: {len(answer.names)} faces ({", ".join(answer.names) or "none"}) '
                                   f'in {answer.compute_time_s:.3f} s CPU', throttle_duration_sec=2.0)
        else:
            refused = sum(self.logic.refused.values())
            self.get_logger().warning(f'refused a request ({answer.reason}): {answer.error} [{refused} refused]',
                                      throttle_duration_sec=1.0)
        return response

    def destroy_node(self) -> None:
        report = dict(self.logic.stats(), malformed_samples=ros.malformed_samples(self))
        print('FACE_SERVER REPORT ' + json.dumps(report), flush=True)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    if ros.BACKEND != 'rclpy':
        return ros.run_node(FaceServerNode, args)
    # rclpy: a thread per admitted request and one to refuse the next (see the module docstring)
    return ros.run_node(FaceServerNode, args, executor_factory=lambda node: ros.MultiThreadedExecutor(
        num_threads=node.config.max_concurrent + 1))


if __name__ == '__main__':
    sys.exit(main())
