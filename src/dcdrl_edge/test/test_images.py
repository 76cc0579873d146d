"""Image messages without ROS: raw and compressed round trips, and every refusal with its reason."""
import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from dcdrl_edge.images import (
    ImageLimits,
    ImageRejected,
    check_array,
    compressed_bytes,
    compressed_size,
    decode_compressed,
    encode_jpeg,
    fill_compressed_msg,
    fill_image_msg,
    format_kind,
    image_from_compressed_msg,
    image_from_msg,
)
from dcdrl_ros.messages import get_interface

Image = get_interface('sensor_msgs/msg/Image')
CompressedImage = get_interface('sensor_msgs/msg/CompressedImage')


@pytest.fixture(scope='module')
def picture():
    """A smooth colour picture (JPEG keeps it close), 48 x 64."""
    rows, cols = np.mgrid[0:48, 0:64]
    return np.stack([rows * 5, cols * 4, (rows + cols) * 2], axis=2).astype(np.uint8)


def duck_image():
    return SimpleNamespace(height=0, width=0, encoding='', is_bigendian=0, step=0, data=array.array('B'))


@pytest.mark.parametrize('make', [Image, duck_image], ids=['our-class', 'duck-typed'])
@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_raw_image_round_trip(picture, make, encoding):
    message = fill_image_msg(make(), picture, encoding)
    assert (message.height, message.width, message.step, message.encoding) == (48, 64, 64 * 3, encoding)
    np.testing.assert_array_equal(image_from_msg(message, want=encoding), picture)
    back_rgb = image_from_msg(message, want='rgb8')
    expected = picture if encoding == 'rgb8' else picture[:, :, ::-1]
    np.testing.assert_array_equal(back_rgb, expected)


def test_mono_and_padded_rows(picture):
    grey = picture[:, :, 0].copy()
    message = fill_image_msg(Image(), grey, 'mono8')
    assert message.step == 64
    np.testing.assert_array_equal(image_from_msg(message, want='mono8'), grey)
    assert image_from_msg(message, want='rgb8').shape == (48, 64, 3)
    # rows padded to 80 bytes, as some drivers send them
    padded = np.zeros((48, 80), np.uint8)
    padded[:, :64] = grey
    message.step = 80
    message.data = padded.reshape(-1)
    np.testing.assert_array_equal(image_from_msg(message, want='mono8'), grey)


def test_raw_image_refusals(picture):
    def reason(**fields):
        message = fill_image_msg(Image(), picture, 'rgb8')
        for name, value in fields.items():
            setattr(message, name, value)
        with pytest.raises(ImageRejected) as error:
            image_from_msg(message, limits=ImageLimits(max_pixels=10_000))
        return error.value.reason, str(error.value)

    assert reason(width=0)[0] == 'empty'
    assert reason(step=10) == ('bad_layout', 'step 10 is smaller than width * channels = 192 for 64x48 rgb8')
    kind, text = reason(data=np.zeros(100, np.uint8))
    assert kind == 'bad_layout' and 'data has 100 bytes, expected step * height' in text
    assert reason(encoding='yuv422')[0] == 'bad_format'
    kind, text = reason(encoding='e' * 100_000)   # quoted cut short (docs/robustness.md, G3)
    assert kind == 'bad_format' and len(text) < 200
    assert reason(height=480, width=640, step=1920)[0] == 'too_many_pixels'


def test_array_checks():
    with pytest.raises(TypeError, match='uint8'):
        check_array(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r'shape \(height, width, 3\)'):
        check_array(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='empty'):
        check_array(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(TypeError, match='numpy array'):
        check_array([[1, 2, 3]])
    with pytest.raises(ValueError, match='quality'):
        encode_jpeg(np.zeros((4, 4, 3), np.uint8), quality=0)


def test_jpeg_round_trip_keeps_size_and_colour_order(picture):
    data = encode_jpeg(picture, 'rgb8', quality=95)
    assert data[:2] == b'\xff\xd8'
    assert compressed_size(data) == ('jpeg', 64, 48)
    decoded = decode_compressed(data, 'rgb8')
    assert decoded.shape == picture.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - picture).mean() < 4  # lossy, but RGB stays RGB
    assert decode_compressed(data, 'mono8').shape == (48, 64)


def test_png_header_and_decode(picture):
    ok, png = cv2.imencode('.png', picture[:, :, ::-1])
    assert ok
    assert compressed_size(png.tobytes()) == ('png', 64, 48)
    np.testing.assert_array_equal(decode_compressed(png.tobytes(), 'rgb8', format='png'), picture)


@pytest.mark.parametrize('make', [CompressedImage, lambda: SimpleNamespace(format='', data=b'')],
                         ids=['our-class', 'duck-typed'])
def test_compressed_message_round_trip(picture, make):
    message = fill_compressed_msg(make(), picture, 'rgb8', quality=90)
    assert message.format == 'jpeg'
    assert compressed_bytes(message)[:2] == b'\xff\xd8'
    assert image_from_compressed_msg(message).shape == (48, 64, 3)


def test_compressed_refusals(picture):
    jpeg = encode_jpeg(picture)

    def reason(data, limits=None, format=''):
        with pytest.raises(ImageRejected) as error:
            decode_compressed(data, 'rgb8', limits, format)
        return error.value.reason, str(error.value)

    assert reason(b'') == ('empty', 'compressed image has no bytes')
    assert reason(jpeg, ImageLimits(max_bytes=100)) == (
        'too_many_bytes', f'compressed image has {len(jpeg)} bytes, over the limit of 100')
    kind, text = reason(jpeg, ImageLimits(max_pixels=1000))
    assert kind == 'too_many_pixels' and '64x48 = 3072 pixels' in text
    kind, text = reason(b'not an image at all' * 50)
    assert kind == 'undecodable' and 'not a JPEG or PNG' in text
    assert reason(jpeg[:200])[0] == 'undecodable'          # header fine, data cut off
    assert reason(b'\xff\xd8\xff\xe0\x00\x10' + b'\x00' * 14)[0] == 'undecodable'  # no frame header
    assert reason(jpeg, format='tiff') == ('bad_format', "compressed image format 'tiff' is not JPEG or PNG")
    assert reason(jpeg, format='png')[0] == 'bad_format'   # the bytes say otherwise
    assert reason(jpeg, format='x' * 65) == ('bad_format', 'compressed image format has 65 characters (at most 64)')


def test_decompression_bomb_is_refused_from_the_header():
    # 12 megapixels of grey compress to a small JPEG: the pixel limit must hold before decoding
    bomb = encode_jpeg(np.full((3000, 4000, 3), 128, np.uint8), quality=50)
    assert len(bomb) < ImageLimits().max_bytes
    with pytest.raises(ImageRejected) as error:
        decode_compressed(bomb)
    assert error.value.reason == 'too_many_pixels'


def test_format_strings():
    assert format_kind('') is None
    assert format_kind('jpeg') == 'jpeg' and format_kind('JPG') == 'jpeg' and format_kind('png') == 'png'
    assert format_kind('rgb8; jpeg compressed bgr8') == 'jpeg'  # image_transport's form
    assert isinstance(ImageRejected('empty', 'x'), ValueError)
