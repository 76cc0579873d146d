"""The face_server and camera nodes as processes over loopback DDS, called from this test's own node."""
import json

import cv2
import numpy as np
import pytest

from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_edge.faces import FaceEngine, KnownFaces
from dcdrl_edge.images import (
    decode_compressed,
    encode_jpeg,
    fill_compressed_bytes,
    image_from_compressed_msg,
    image_from_msg,
)
from dcdrl_ros import (
    ros,  # noqa: F401  (installs the interface import hook before the imports below)
    runtime,
)
from dcdrl_ros.msg_arrays import get_array
from dcdrl_ros.runtime.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from dcdrl_ros.testing import python_child, spin_until

from dcdrl_msgs.srv import RecognizeFaces
from sensor_msgs.msg import CompressedImage, Image

pytestmark = [pytest.mark.dds, pytest.mark.slow]
TIMEOUT = 60.0  # generous for a loaded 2-core machine; every wait ends as soon as its condition holds
MAX_BYTES, MAX_PIXELS = 300_000, 600_000


def call(executor, client, data, format='jpeg', tolerance=0.0):
    request = RecognizeFaces.Request()
    fill_compressed_bytes(request.image, data, format)
    request.tolerance = tolerance
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=TIMEOUT)
    assert future.done(), 'recognize_faces did not answer'
    return future.result()


def test_face_server_answers_like_a_local_engine_and_survives_bad_images(loopback_graph, known_dir, astronaut):
    domain, context = loopback_graph
    server = python_child(['-m', 'dcdrl_edge.face_server_node', '--ros-args', '-p', f'known_faces_dir:={known_dir}',
                           '-p', f'max_image_bytes:={MAX_BYTES}', '-p', f'max_pixels:={MAX_PIXELS}'], domain)
    try:
        jpeg = encode_jpeg(astronaut, 'rgb8', quality=90)
        engine = FaceEngine()  # meanwhile, the same recognition here
        engine.known = KnownFaces.from_directory(str(known_dir), engine)
        local = engine.recognise(decode_compressed(jpeg))
        server.wait_for_line('face_server started: 1 known faces (eileen)', TIMEOUT)
        node = runtime.Node('face_tester', namespace=DEFAULT_NAMESPACE, context=context)  # where the server is
        executor = runtime.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        client = node.create_client(RecognizeFaces, 'recognize_faces')
        assert client.wait_for_service(timeout_sec=TIMEOUT)

        reply = call(executor, client, jpeg)
        assert reply.ok and reply.error == ''
        assert get_array(reply, 'boxes', np.int64).tolist() == local.flat_boxes()    # same boxes over DDS
        assert list(reply.names) == list(local.names) and 'eileen' in reply.names
        assert reply.compute_time_s > 0

        garbage = call(executor, client, bytes(range(256)) * 8, format='')
        assert not garbage.ok and 'not a JPEG or PNG stream' in garbage.error and len(garbage.names) == 0
        oversized = call(executor, client, np.random.default_rng(0).bytes(MAX_BYTES + 1))
        assert not oversized.ok and f'over the limit of {MAX_BYTES}' in oversized.error
        huge = call(executor, client, encode_jpeg(cv2.resize(astronaut, (1024, 1024)), quality=30))
        assert not huge.ok and f'1048576 pixels, over the limit of {MAX_PIXELS}' in huge.error

        again = call(executor, client, jpeg, tolerance=0.3)   # still serving
        assert again.ok and 'eileen' in again.names
        server.wait_for_line('refused a request (undecodable)', TIMEOUT)
    finally:
        server.stop(timeout=30.0)
    report = json.loads(next(line for line in server.lines if 'FACE_SERVER REPORT' in line).split('REPORT ', 1)[1])
    assert report['answered'] == 2 and report['requests'] == 5
    assert report['refused'] == {'too_many_bytes': 1, 'too_many_pixels': 1, 'undecodable': 1}


def test_camera_publishes_frames_that_decode_to_the_right_size(loopback_graph, tmp_path):
    domain, context = loopback_graph
    # a 3-frame video for a second camera whose source ends
    clip = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*'MJPG'), 10, (64, 48))
    for grey in (20, 120, 220):
        writer.write(np.full((48, 64, 3), grey, np.uint8))
    writer.release()
    camera = python_child(['-m', 'dcdrl_edge.camera_node', '--ros-args', '-p', 'source:=synthetic:1',
                           '-p', 'width:=320', '-p', 'height:=240', '-p', 'rate_hz:=20.0'], domain)
    video = python_child(['-m', 'dcdrl_edge.camera_node', '--ros-args', '-r', '__ns:=/video',
                          '-p', f'source:=video:{clip}', '-p', 'rate_hz:=20.0'], domain)
    try:
        node = runtime.Node('camera_tester', namespace=DEFAULT_NAMESPACE, context=context)
        executor = runtime.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        raw, compressed = [], []
        node.create_subscription(Image, 'camera/image', raw.append, qos_profile_sensor_data)
        node.create_subscription(CompressedImage, 'camera/image/compressed', compressed.append,
                                 QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        spin_until(executor, lambda: raw and compressed, TIMEOUT, 'raw and compressed frames')
        frame = image_from_msg(raw[0])
        assert frame.shape == (240, 320, 3) and raw[0].encoding == 'rgb8' and raw[0].header.frame_id == 'camera'
        assert compressed[0].format == 'jpeg'
        assert image_from_compressed_msg(compressed[0]).shape == (240, 320, 3)
        # the raw and JPEG copies of one frame (same stamp) agree up to JPEG loss
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in compressed}
        spin_until(executor, lambda: any((m.header.stamp.sec, m.header.stamp.nanosec) in stamps for m in raw)
                   or len(compressed) > 20, TIMEOUT, 'a frame on both topics')
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in compressed}
        pair = next(m for m in raw if (m.header.stamp.sec, m.header.stamp.nanosec) in stamps)
        twin = stamps[(pair.header.stamp.sec, pair.header.stamp.nanosec)]
        difference = np.abs(image_from_msg(pair).astype(int) - image_from_compressed_msg(twin).astype(int))
        assert difference.mean() < 4

        video.wait_for_line('source ended after 3 frames', TIMEOUT)
        assert video.process.poll() is None                    # idle, still running
    finally:
        video.stop(timeout=30.0)
        camera.stop(timeout=30.0)
    report = json.loads(next(line for line in video.lines if 'CAMERA REPORT' in line).split('REPORT ', 1)[1])
    assert report == {'frames': 3, 'failed_grabs': 0, 'ended': True}
    assert video.process.returncode == 0 and camera.process.returncode == 0


def test_camera_with_a_source_that_cannot_open_exits_with_one_clear_line(loopback_graph):
    domain, _ = loopback_graph
    camera = python_child(['-m', 'dcdrl_edge.camera_node', '--ros-args', '-p', 'source:=video:/nonexistent.mp4'],
                          domain)
    line = camera.wait_for_line('FATAL', TIMEOUT)
    assert "video file '/nonexistent.mp4' does not exist" in line
    assert camera.process.wait(TIMEOUT) == 2
