"""The camera node on the real ROS 2: raw frames go through cv_bridge there (camera_node._cv_bridge), and
a ROS-free subscriber must receive exactly the Image our own conversion makes of the same frame.

cv_bridge needs OpenCV 4 in Python (with OpenCV 5 `cv2_to_imgmsg` fails with KeyError: 16), which is why
requirements.txt pins opencv-python-headless below 5: a ROS 2 user installs our requirements beside it.
"""
import numpy as np
import pytest

from dcdrl_ros.testing import ChildProcess, TopicRecorder, fresh_domain_id

pytestmark = [pytest.mark.dds]
TIMEOUT = 90.0
WIDTH, HEIGHT, SEED = 160, 120, 7


def test_rclpy_camera_frames_through_cv_bridge_equal_our_conversion(ros2_ws):
    from dcdrl_edge.frame_sources import SyntheticFaceSource, fit_frame
    from dcdrl_edge.images import fill_image_msg
    from dcdrl_ros.runtime.qos import qos_profile_sensor_data

    from sensor_msgs.msg import Image

    domain = fresh_domain_id()
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                              DCDRL_BACKEND='rclpy')
    recorder = TopicRecorder(domain)
    try:
        frames = recorder.record(Image, '/robot/camera/image', qos_profile_sensor_data)
        with ChildProcess([ros2_ws.python(), '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_edge', 'camera', '--ros-args',
                           '-r', '__ns:=/robot', '-p', f'source:=synthetic:{SEED}', '-p', f'width:={WIDTH}',
                           '-p', f'height:={HEIGHT}', '-p', 'rate_hz:=10.0', '-p', 'publish_compressed:=false'],
                          env=env) as camera:
            started = camera.wait_for_line('camera started', TIMEOUT)
            recorder.wait_for(lambda: len(frames) >= 3, TIMEOUT, 'three raw frames from the rclpy camera')
            assert camera.stop() == 0, '\n'.join(camera.lines)
        assert '(raw via cv_bridge)' in started  # the rclpy path really used cv_bridge
        source = SyntheticFaceSource(WIDTH, HEIGHT, SEED)
        ours = {}
        for index in range(200):  # the frames the camera can have published by now, ours converted
            expected = fill_image_msg(Image(), fit_frame(source.frame(index), WIDTH, HEIGHT), 'rgb8')
            ours[bytes(expected.data)] = expected
        for frame in frames[:3]:
            match = ours.get(bytes(frame.data))
            assert match is not None, 'a cv_bridge frame differs from every frame our conversion makes'
            assert (frame.encoding, frame.height, frame.width, frame.step, frame.is_bigendian) == \
                (match.encoding, match.height, match.width, match.step, match.is_bigendian)
        assert len({bytes(frame.data) for frame in frames[:3]}) == 3  # a moving picture, not one frame
        assert np.frombuffer(bytes(frames[0].data), np.uint8).std() > 10  # not a blank image
    finally:
        recorder.close()
