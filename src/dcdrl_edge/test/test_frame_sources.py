"""Frame sources: the synthetic scene, video files, image sequences, devices, and spec parsing."""
import os

import cv2
import numpy as np
import pytest

from dcdrl_edge.frame_sources import (
    DeviceSource,
    FrameSource,
    ImageSequenceSource,
    SourceError,
    SyntheticFaceSource,
    VideoFileSource,
    fit_frame,
    open_source,
)

GREYS = (0, 40, 80, 120, 160)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    """Five 64x48 frames of growing grey in an MJPG AVI (OpenCV writes it without external codecs)."""
    path = str(tmp_path_factory.mktemp('video') / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, (64, 48))
    assert writer.isOpened()
    for grey in GREYS:
        writer.write(np.full((48, 64, 3), grey, np.uint8))
    writer.release()
    return path


def drain(source, limit=50):
    frames = []
    for _ in range(limit):
        frame = source.read()
        if frame is None:
            break
        frames.append(frame)
    return frames


def test_synthetic_frames_are_deterministic_moving_and_sized():
    a, b = SyntheticFaceSource(320, 240, seed=3), SyntheticFaceSource(320, 240, seed=3)
    first = drain(a, 4)
    assert [f.shape for f in first] == [(240, 320, 3)] * 4 and first[0].dtype == np.uint8
    for frame, again in zip(first, drain(b, 4)):
        np.testing.assert_array_equal(frame, again)
    np.testing.assert_array_equal(a.frame(1), first[1])      # frame(k) does not move the read position
    assert a.index == 4
    assert not np.array_equal(first[0], first[1])           # it moves
    assert not np.array_equal(first[0], SyntheticFaceSource(320, 240, seed=4).frame(0))
    assert isinstance(a, FrameSource)
    a.close()
    assert a.read() is None and a.ended


def test_video_file_ends_or_loops(video):
    source = VideoFileSource(video)
    frames = drain(source)
    assert [round(f.mean() / 40) * 40 for f in frames] == list(GREYS)   # MJPG is lossy: means, not pixels
    assert source.ended and source.read() is None
    looping = VideoFileSource(video, loop=True)
    frames = drain(looping, 7)
    assert len(frames) == 7 and not looping.ended
    assert round(frames[5].mean() / 40) * 40 == GREYS[0]                # rewound after the fifth frame
    looping.close()


def test_image_sequence_in_name_order_skips_unreadable_files(tmp_path):
    for index, grey in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f'frame_{index}.png'), np.full((8, 8, 3), grey, np.uint8))
    (tmp_path / 'frame_1b.png').write_bytes(b'not a png')
    (tmp_path / 'notes.txt').write_text('ignored: not an image name')
    source = ImageSequenceSource(str(tmp_path))
    assert len(source.paths) == 4
    assert [int(f[0, 0, 0]) for f in drain(source)] == [10, 20, 30]
    assert source.ended and [os.path.basename(p) for p in source.skipped] == ['frame_1b.png']
    looping = ImageSequenceSource(str(tmp_path / 'frame_?.png'), loop=True)   # a glob
    assert [int(f[0, 0, 0]) for f in drain(looping, 5)] == [10, 20, 30, 10, 20]
    assert not looping.ended


def test_image_sequence_of_only_unreadable_files_ends(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'garbage')
    source = ImageSequenceSource(str(tmp_path), loop=True)
    assert source.read() is None and source.ended


def test_open_source_parses_specs(video, tmp_path):
    synthetic = open_source('synthetic', width=160, height=120)
    assert isinstance(synthetic, SyntheticFaceSource) and synthetic.read().shape == (120, 160, 3)
    assert open_source('synthetic:7').seed == 7
    assert isinstance(open_source(f'video:{video}', loop=True), VideoFileSource)
    cv2.imwrite(str(tmp_path / 'x.png'), np.zeros((4, 4, 3), np.uint8))
    assert isinstance(open_source(f'images:{tmp_path}'), ImageSequenceSource)
    for bad, message in (('webcam', 'source must be'), ('video:', 'source must be'), ('device:front', 'index'),
                         ('synthetic:x', 'seed must be an integer')):
        with pytest.raises(ValueError, match=message):
            open_source(bad)
    with pytest.raises(SourceError, match='does not exist'):
        open_source(f'video:{tmp_path}/missing.mp4')
    with pytest.raises(SourceError, match='no image files'):
        open_source(f'images:{tmp_path}/*.jpg')
    with pytest.raises(TypeError):
        open_source(0)


def test_device_source_errors_are_clear():
    with pytest.raises(ValueError, match='index must be an integer >= 0'):
        DeviceSource(-1)
    with pytest.raises(SourceError, match='cannot open camera device 99'):
        DeviceSource(99)   # no machine running these tests has a hundredth camera


def test_fit_frame_resizes_only_when_needed():
    frame = np.zeros((48, 64, 3), np.uint8)
    assert fit_frame(frame, 64, 48) is frame
    assert fit_frame(frame, 32, 24).shape == (24, 32, 3)
    assert fit_frame(frame, 128, 96).shape == (96, 128, 3)
