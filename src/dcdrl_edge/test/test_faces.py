"""FaceEngine on the shipped astronaut image: detection, enrolment from a folder, matching, bad input."""
import math

import cv2
import numpy as np
import pytest

from dcdrl_edge.faces import ENCODING_SIZE, UNKNOWN, FaceEngine, FaceResult, KnownFaces, check_tolerance
from dcdrl_edge.frame_sources import SyntheticFaceSource

# Eileen Collins' face in skimage.data.astronaut() (top, right, bottom, left), by eye
FACE_REGION = (50, 290, 190, 150)


def inside(box, region):
    top, right, bottom, left = box
    return top >= region[0] and right <= region[1] and bottom <= region[2] and left >= region[3]


@pytest.fixture(scope='module')
def engine():
    return FaceEngine()


@pytest.fixture(scope='module')
def enrolment(tmp_path_factory, astronaut):
    """A known-faces folder: eileen.png (a crop of her face), collins/ (the crop mirrored), and junk."""
    folder = tmp_path_factory.mktemp('known')
    crop = np.ascontiguousarray(astronaut[20:240, 120:320])
    cv2.imwrite(str(folder / 'eileen.png'), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (folder / 'collins').mkdir()
    cv2.imwrite(str(folder / 'collins' / 'mirrored.jpg'), cv2.cvtColor(crop[:, ::-1], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / 'wall.png'), np.full((120, 120, 3), 90, np.uint8))      # no face
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8 truncated')                         # unreadable
    cv2.imwrite(str(folder / 'unknown.png'), np.zeros((8, 8, 3), np.uint8))          # reserved name
    (folder / 'empty_person').mkdir()
    (folder / 'README.txt').write_text('not an image: ignored')
    return folder


@pytest.fixture(scope='module')
def known(enrolment):
    return KnownFaces.from_directory(str(enrolment))


def test_faces_found_in_the_astronaut_image(engine, astronaut):
    result = engine.recognise(astronaut)
    assert len(result.boxes) >= 1
    assert any(inside(box, FACE_REGION) for box in result.boxes), result.boxes
    assert result.names == (UNKNOWN,) * len(result.boxes)          # nobody enrolled
    assert all(math.isinf(d) for d in result.distances)
    assert result.compute_time_s > 0
    assert result.flat_boxes()[:4] == list(result.boxes[0])
    assert engine.detect(astronaut) == list(result.boxes)           # the same detector, the same boxes


def test_enrolment_from_a_folder(known, enrolment):
    assert known.names == ['collins', 'eileen'] and known.people == ['collins', 'eileen']
    assert known.encodings.shape == (2, ENCODING_SIZE)
    why = {path.split('/')[-1]: reason for path, reason in known.skipped.items()}
    assert why == {'broken.jpg': 'not a readable image', 'empty_person': 'folder holds no image files',
                   'unknown.png': "name 'unknown' is reserved or empty", 'wall.png': 'no face found'}


def test_an_enrolled_face_is_recognised_by_name(known, astronaut):
    engine = FaceEngine(tolerance=0.5, known=known)
    result = engine.recognise(astronaut)
    assert 'eileen' in result.names
    index = result.names.index('eileen')
    assert inside(result.boxes[index], FACE_REGION) and result.distances[index] <= 0.5
    # a strict tolerance keeps the name only for a near-identical encoding (the crop's)
    strict = engine.recognise(astronaut, tolerance=0.05)
    assert strict.names[index] == 'eileen'


def test_match_uses_the_nearest_known_face_within_tolerance(engine):
    known = KnownFaces()
    base = np.zeros(ENCODING_SIZE)
    known.add('ann', base)
    known.add('bob', base + 0.1)           # distance from base: 0.1 * sqrt(128) = 1.13
    matcher = FaceEngine(known=known)
    probe = base + 0.02                    # 0.226 from ann, 0.905 from bob
    assert matcher.match([probe]) == (['ann'], [pytest.approx(0.02 * math.sqrt(128))])
    assert matcher.match([probe], tolerance=0.2)[0] == [UNKNOWN]
    assert matcher.match([base + 0.09])[0] == ['bob']
    assert matcher.match([]) == ([], [])


def test_synthetic_camera_frames_show_a_face(engine):
    frame = SyntheticFaceSource(640, 480, seed=0).frame(0)
    assert len(engine.detect(frame)) >= 1


def test_result_survives_plain_values():
    result = FaceResult(('eileen', UNKNOWN), ((1, 2, 3, 4), (5, 6, 7, 8)), (0.25, math.inf), 0.5)
    values = result.to_dict()
    assert values['distances'] == [0.25, None]
    assert FaceResult.from_dict(values) == result


def test_bad_settings_and_input_are_refused_clearly(engine, tmp_path):
    with pytest.raises(ValueError, match="model must be one of"):
        FaceEngine(model='haar')
    with pytest.raises(ValueError, match='upsample must be an integer in 0..8'):
        FaceEngine(upsample=-1)
    for bad in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r'tolerance must be in \(0, 1\]'):
            check_tolerance(bad)
    with pytest.raises(TypeError, match='tolerance must be a number'):
        check_tolerance('0.5')
    with pytest.raises(TypeError, match='uint8'):
        engine.recognise(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match='shape'):
        engine.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match='does not exist'):
        KnownFaces.from_directory(str(tmp_path / 'nowhere'))
    known = KnownFaces()
    with pytest.raises(ValueError, match='reserved'):
        known.add(UNKNOWN, np.zeros(ENCODING_SIZE))
    with pytest.raises(ValueError, match='128 finite numbers'):
        known.add('ann', np.zeros(3))
    with pytest.raises(ValueError, match='non-empty name'):
        known.add('', np.zeros(ENCODING_SIZE))
