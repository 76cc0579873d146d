"""FaceServerLogic without ROS: answers, every refusal reason, the busy limit, and serving on afterwards."""
import math
import threading

import cv2
import numpy as np
import pytest

from dcdrl_edge.face_server import REFUSAL_REASONS, FaceServerConfig, FaceServerLogic
from dcdrl_edge.faces import FaceEngine, FaceResult, KnownFaces
from dcdrl_edge.images import decode_compressed, encode_jpeg

TIMEOUT = 30.0


@pytest.fixture(scope='module')
def jpeg(astronaut):
    return encode_jpeg(astronaut, 'rgb8', quality=90)


@pytest.fixture(scope='module')
def logic(known_dir):
    return FaceServerLogic(FaceServerConfig(known_faces_dir=known_dir, max_image_bytes=200_000,
                                            max_pixels=600_000))


def test_answers_with_the_boxes_of_a_local_engine_and_the_enrolled_name(logic, jpeg):
    answer = logic.handle(jpeg, 'jpeg', 0.0)
    assert answer.ok and answer.error == '' and answer.reason == ''
    local = FaceEngine(known=logic.engine.known).recognise(decode_compressed(jpeg))
    assert answer.boxes == tuple(local.flat_boxes()) and len(answer.boxes) == 4 * len(answer.names)
    assert 'eileen' in answer.names and answer.names == local.names
    assert answer.compute_time_s > 0
    assert logic.known_people == ['eileen']


def test_refusals_are_clear_counted_and_the_server_keeps_serving(logic, jpeg, astronaut):
    before = dict(logic.refused)
    big = encode_jpeg(cv2.resize(astronaut, (1024, 1024)), quality=30)   # ~1 MP, under the byte limit
    assert len(big) < 200_000
    cases = [
        (b'', 'jpeg', 0.0, 'empty', 'image has no bytes'),
        (b'\x00garbage' * 100, '', 0.0, 'undecodable', 'not a JPEG or PNG stream'),
        (jpeg[:300], 'jpeg', 0.0, 'undecodable', 'cv2 could not decode'),
        (b'\xff' * 200_001, 'jpeg', 0.0, 'too_many_bytes', 'image has 200001 bytes, over the limit of 200000'),
        (big, 'jpeg', 0.0, 'too_many_pixels', '1024x1024 = 1048576 pixels, over the limit of 600000'),
        (jpeg, 'tiff', 0.0, 'bad_format', "format 'tiff' is not JPEG or PNG"),
        (jpeg, 'jpeg', math.nan, 'bad_tolerance', 'tolerance must be <= 0'),
        (jpeg, 'jpeg', 1.5, 'bad_tolerance', 'or in (0, 1]'),
    ]
    for data, format, tolerance, reason, text in cases:
        answer = logic.handle(data, format, tolerance)
        assert not answer.ok and answer.reason == reason and text in answer.error, (reason, answer)
        assert answer.names == () and answer.boxes == ()
    after = logic.refused
    assert {r: after[r] - before.get(r, 0) for r in after if after[r] != before.get(r, 0)} == {
        'empty': 1, 'undecodable': 2, 'too_many_bytes': 1, 'too_many_pixels': 1, 'bad_format': 1,
        'bad_tolerance': 2}
    assert set(after) <= set(REFUSAL_REASONS)
    # still serving, with a request's own tolerance; numpy bytes (as our messages carry them) work too
    answer = logic.handle(np.frombuffer(jpeg, np.uint8), 'rgb8; jpeg compressed bgr8', 0.05)
    assert answer.ok and 'eileen' in answer.names
    stats = logic.stats()
    assert stats['answered'] >= 1 and stats['refused'] == dict(sorted(after.items()))
    assert stats['requests'] == stats['answered'] + sum(after.values())


class BlockingEngine:
    """Stands in for FaceEngine: recognise() waits until released, so a slot stays taken."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.known = KnownFaces()

    def recognise(self, image, tolerance=None):
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        return FaceResult(('unknown',), ((1, 2, 3, 0),), (math.inf,), 0.01)


def test_over_max_concurrent_is_refused_busy_at_once(jpeg):
    engine = BlockingEngine()
    logic = FaceServerLogic(FaceServerConfig(max_concurrent=1), engine=engine)
    answers = []
    worker = threading.Thread(target=lambda: answers.append(logic.handle(jpeg, 'jpeg', 0.0)))
    worker.start()
    try:
        assert engine.entered.wait(TIMEOUT)
        busy = logic.handle(jpeg, 'jpeg', 0.0)
        assert not busy.ok and busy.reason == 'busy' and 'server busy: 1 requests in progress' in busy.error
    finally:
        engine.release.set()
        worker.join(TIMEOUT)
    assert answers[0].ok and answers[0].boxes == (1, 2, 3, 0)
    assert logic.handle(jpeg, 'jpeg', 0.0).ok                 # the slot is free again
    assert logic.refused == {'busy': 1}


def test_an_engine_error_is_a_refusal_not_a_crash(jpeg):
    class Broken(BlockingEngine):
        def recognise(self, image, tolerance=None):
            raise RuntimeError('dlib says no')

    logic = FaceServerLogic(FaceServerConfig(), engine=Broken())
    answer = logic.handle(jpeg)
    assert not answer.ok and answer.reason == 'failed'
    assert answer.error == 'recognition failed: RuntimeError: dlib says no'
    assert logic.handle(jpeg).reason == 'failed'            # and it still answers the next one


def test_config_is_checked():
    with pytest.raises(ValueError, match='model must be one of'):
        FaceServerConfig(model='fast')
    with pytest.raises(ValueError, match='max_concurrent must be >= 1'):
        FaceServerConfig(max_concurrent=0)
    with pytest.raises(ValueError, match='max_image_bytes must be >= 1'):
        FaceServerConfig(max_image_bytes=-5)
    with pytest.raises(ValueError, match='tolerance'):
        FaceServerConfig(tolerance=0.0)
    with pytest.raises(ValueError, match='does not exist'):
        FaceServerLogic(FaceServerConfig(known_faces_dir='/nonexistent/faces'))
