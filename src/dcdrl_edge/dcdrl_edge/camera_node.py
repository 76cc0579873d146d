"""`ros2 run dcdrl_edge camera`: frames from a camera, a video, images or a synthetic scene, published.

A timer at ``rate_hz`` reads one frame from the source (dcdrl_edge.frame_sources), resizes it
to ``width`` x ``height`` when it differs, and publishes it:

  camera/image             sensor_msgs/Image, rgb8      sensor-data QoS (best effort, keep-last 5):
                                                        for nodes on the same host; a late frame is
                                                        worth less than the next one
  camera/image/compressed  sensor_msgs/CompressedImage  reliable, keep-last 5: JPEG for anything
                           (format 'jpeg')              that crosses hosts (a 640x480 rgb8 frame is
                                                        921,600 bytes raw, ~40-60 KB as JPEG q80)

Under ROS 2 (rclpy) the raw Image goes through cv_bridge when it is importable; otherwise, and
for JPEG always (cv_bridge has no quality setting), dcdrl_edge.images makes the same messages.

Parameters: the fields of dcdrl_edge.frame_sources.CameraParameters (their table is in
docs/face-testbed.md; `camera --help` lists them).

A source that cannot be opened stops the node at start (exit code 2, one line). A source that
ends (a video or sequence without ``loop``) is logged once; the node stays up, idle. A failed
grab of a device is counted and logged (throttled). On shutdown the node prints
'CAMERA REPORT {json}' (frames published, failed grabs, ended).
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_edge.frame_sources import CameraParameters, fit_frame, open_source
from dcdrl_edge.images import fill_compressed_msg, fill_image_msg
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, set_timer_period
from dcdrl_ros.parameter_dataclass import declare_parameters

from sensor_msgs.msg import CompressedImage, Image


def _cv_bridge() -> Any | None:
    """A CvBridge under rclpy when cv_bridge is installed, else None (our conversions)."""
    if ros.BACKEND != 'rclpy':
        return None
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


class CameraNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('camera', namespace=DEFAULT_NAMESPACE)
        # Live: the frame rate and the JPEG quality (their limits are the fields'); the rest is read at start.
        self.live = LiveParameters({
            'rate_hz': Live(apply=lambda rate: set_timer_period(self.timer, 1.0 / rate)),
            'jpeg_quality': Live(apply=lambda quality: setattr(self, 'jpeg_quality', quality))})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        parameters = declare_parameters(self, CameraParameters, self.live)
        self.rate_hz = parameters.rate_hz
        self.width, self.height = parameters.width, parameters.height
        self.jpeg_quality = parameters.jpeg_quality
        self.frame_id = parameters.frame_id
        self.source = open_source(parameters.source, width=self.width, height=self.height, loop=parameters.loop)
        self.raw_pub = (self.create_publisher(Image, 'camera/image', ros.qos_profile_sensor_data)
                        if parameters.publish_raw else None)
        self.compressed_pub = (self.create_publisher(
            CompressedImage, 'camera/image/compressed',
            ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.RELIABLE))
            if parameters.publish_compressed else None)
        self.bridge = _cv_bridge()
        self.frames = 0
        self.failed_grabs = 0
        self.ended = False
        self.timer = self.create_timer(1.0 / self.rate_hz, self.grab)
        topics = [t for t, p in (('camera/image', self.raw_pub), ('camera/image/compressed', self.compressed_pub)) if p]
        self.get_logger().info(
            f'camera started: {self.source.description} at {self.rate_hz:g} Hz, {self.width}x{self.height}, '
            f'JPEG q{self.jpeg_quality}, publishing {", ".join(topics)}'
            + (' (raw via cv_bridge)' if self.bridge is not None else ''))

    def grab(self) -> None:
        frame = self.source.read()
        if frame is None:
            if self.source.ended:
                self.ended = True
                self.timer.cancel()
                self.get_logger().info(f'source ended after {self.frames} frames ({self.source.description}); '
                                       f'idle until shut down (set loop:=true to rewind)')
            else:
                self.failed_grabs += 1
                self.get_logger().warning(f'{self.source.description}: no frame ({self.failed_grabs} failed grabs)',
                                          throttle_duration_sec=5.0)
            return
        frame = fit_frame(frame, self.width, self.height)
        stamp = self.get_clock().now().to_msg()
        if self.raw_pub is not None:
            if self.bridge is not None:
                image = self.bridge.cv2_to_imgmsg(frame, encoding='rgb8')
            else:
                image = fill_image_msg(Image(), frame, 'rgb8')
            image.header.stamp = stamp
            image.header.frame_id = self.frame_id
            self.raw_pub.publish(image)
        if self.compressed_pub is not None:
            compressed = fill_compressed_msg(CompressedImage(), frame, 'rgb8', self.jpeg_quality)
            compressed.header.stamp = stamp
            compressed.header.frame_id = self.frame_id
            self.compressed_pub.publish(compressed)
        self.frames += 1
        if self.frames == 1:
            self.get_logger().info(f'first frame published ({frame.shape[1]}x{frame.shape[0]})')

    def destroy_node(self) -> None:
        self.source.close()
        print('CAMERA REPORT ' + json.dumps({'frames': self.frames, 'failed_grabs': self.failed_grabs,
                                             'ended': self.ended}), flush=True)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(CameraNode, args)


if __name__ == '__main__':
    sys.exit(main())
