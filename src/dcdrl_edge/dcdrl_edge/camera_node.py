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

Parameters (default; meaning):
  source ('synthetic')       'synthetic[:SEED]', 'device:INDEX', 'video:PATH', 'images:DIR_OR_GLOB'
  rate_hz (5.0)              frames per second (timer period 1 / rate_hz)
  width (640), height (480)  published size; frames of another size are resized
  jpeg_quality (80)          1..100 for the compressed topic
  publish_raw (true)         publish camera/image
  publish_compressed (true)  publish camera/image/compressed
  frame_id ('camera')        header.frame_id
  loop (false)               rewind a video or image sequence at its end

A source that cannot be opened stops the node at start (exit code 2, one line). A source that
ends (a video or sequence without ``loop``) is logged once; the node stays up, idle. A failed
grab of a device is counted and logged (throttled). On shutdown the node prints
'CAMERA REPORT {json}' (frames published, failed grabs, ended).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional, Sequence

from dcdrl_core import ros
from dcdrl_core.live_parameters import Live, LiveParameters, set_timer_period, within
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_core.param_check import check_no_unknown_parameters
from sensor_msgs.msg import CompressedImage, Image
from dcdrl_edge.frame_sources import fit_frame, open_source
from dcdrl_edge.images import fill_compressed_msg, fill_image_msg

MAX_SIDE = 8192


def _cv_bridge() -> Optional[Any]:
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
        # Live: the frame rate and the JPEG quality; the source and the frame size are read at start.
        self.live = LiveParameters({
            'rate_hz': Live(check=lambda rate: '' if 0.0 < rate <= 1000.0 else f'must be in (0, 1000], got {rate!r}',
                            apply=lambda rate: set_timer_period(self.timer, 1.0 / rate)),
            'jpeg_quality': Live(check=within(1, 100), apply=lambda quality: setattr(self, 'jpeg_quality', quality))})
        for name, default in (('source', 'synthetic'), ('rate_hz', 5.0), ('width', 640), ('height', 480),
                              ('jpeg_quality', 80), ('publish_raw', True), ('publish_compressed', True),
                              ('frame_id', 'camera'), ('loop', False)):
            self.declare_parameter(name, default, self.live.descriptor(name))
        check_no_unknown_parameters(self)
        param = lambda name: self.get_parameter(name).value  # noqa: E731
        self.rate_hz = float(param('rate_hz'))
        self.width, self.height = int(param('width')), int(param('height'))
        self.jpeg_quality = int(param('jpeg_quality'))
        self.frame_id = str(param('frame_id'))
        if not 0.0 < self.rate_hz <= 1000.0:
            raise ValueError(f'rate_hz must be in (0, 1000], got {self.rate_hz}')
        for name, value in (('width', self.width), ('height', self.height)):
            if not 1 <= value <= MAX_SIDE:
                raise ValueError(f'{name} must be in 1..{MAX_SIDE}, got {value}')
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f'jpeg_quality must be in 1..100, got {self.jpeg_quality}')
        if not param('publish_raw') and not param('publish_compressed'):
            raise ValueError('publish_raw and publish_compressed are both false: nothing to publish')
        self.source = open_source(param('source'), width=self.width, height=self.height, loop=bool(param('loop')))
        self.raw_pub = (self.create_publisher(Image, 'camera/image', ros.qos_profile_sensor_data)
                        if param('publish_raw') else None)
        self.compressed_pub = (self.create_publisher(
            CompressedImage, 'camera/image/compressed',
            ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.RELIABLE))
            if param('publish_compressed') else None)
        self.bridge = _cv_bridge()
        self.frames = 0
        self.failed_grabs = 0
        self.ended = False
        self.timer = self.create_timer(1.0 / self.rate_hz, self.grab)
        self.live.attach(self)
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


def main(args: Optional[Sequence[str]] = None) -> int:
    return ros.run_node(CameraNode, args)


if __name__ == '__main__':
    sys.exit(main())
