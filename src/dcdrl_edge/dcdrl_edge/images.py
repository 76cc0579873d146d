"""Images into and out of sensor_msgs/Image and sensor_msgs/CompressedImage, without ROS.

The functions are duck-typed on message objects (anything with the fields of those messages),
so the same code serves our runtime's classes and rclpy's generated ones (array fields go
through dcdrl_ros.msg_arrays). Under rclpy a node may use cv_bridge instead for raw images;
these functions give the same layout (``step = width * channels``, ``is_bigendian = 0``).

Everything that reads untrusted bytes checks them first and raises ``ImageRejected`` with a
short ``reason`` (for counters) and a message that says what was wrong:

==================  ===========================================================
reason              meaning
==================  ===========================================================
``empty``           no bytes, or a zero width/height
``too_many_bytes``  more compressed bytes than ``max_bytes``
``too_many_pixels`` width * height over ``max_pixels`` (checked from the header,
                    before decoding: a small JPEG can claim a huge image)
``bad_format``      a CompressedImage format we do not decode, or an unknown encoding
``undecodable``     not a JPEG/PNG stream, or one cv2 cannot decode
``bad_layout``      raw Image whose step/data size does not fit width, height, encoding
==================  ===========================================================
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from dcdrl_ros.msg_arrays import get_array, set_array

# Encodings we read and write: name -> channels. All 8-bit; RGB is the working order
# (face_recognition wants RGB), BGR is what OpenCV captures and encodes.
ENCODINGS = {'rgb8': 3, 'bgr8': 3, 'mono8': 1}
DEFAULT_MAX_BYTES = 2_000_000
DEFAULT_MAX_PIXELS = 1920 * 1080
# Longest CompressedImage format / Image encoding string read ("rgb8; jpeg compressed bgr8" has 25
# characters); longer ones are refused, and errors quote at most this many characters of them.
MAX_FORMAT_LENGTH = 64
# Formats of sensor_msgs/CompressedImage we accept. ROS's image_transport writes e.g.
# "rgb8; jpeg compressed bgr8"; plain "jpeg"/"png" is the message's documented form.
_FORMAT_WORDS = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}


class ImageRejected(ValueError):
    """Bad image input; ``reason`` is one short word for counters (see the module docstring)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ImageLimits:
    """Upper bounds for untrusted images (compressed bytes, decoded pixels)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        for name in ('max_bytes', 'max_pixels'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')


# ---------------------------------------------------------------------------- arrays
def check_array(image: Any, encoding: str = 'rgb8') -> np.ndarray:
    """``image`` as a C-contiguous uint8 array of the shape ``encoding`` needs; else TypeError/ValueError."""
    channels = _channels(encoding)
    if not isinstance(image, np.ndarray):
        raise TypeError(f'image must be a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise TypeError(f'image must be uint8, got {image.dtype}')
    if channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    expected = '(height, width)' if channels == 1 else f'(height, width, {channels})'
    if (channels == 1 and image.ndim != 2) or (channels > 1 and (image.ndim != 3 or image.shape[2] != channels)):
        raise ValueError(f'{encoding} image must have shape {expected}, got {image.shape}')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f'image must not be empty, got shape {image.shape}')
    return np.ascontiguousarray(image)


def convert(image: np.ndarray, source: str, target: str) -> np.ndarray:
    """Colour conversion between rgb8, bgr8 and mono8 (returns ``image`` itself when they are equal)."""
    _channels(source)
    _channels(target)
    if source == target:
        return image
    codes = {('rgb8', 'bgr8'): cv2.COLOR_RGB2BGR, ('bgr8', 'rgb8'): cv2.COLOR_BGR2RGB,
             ('rgb8', 'mono8'): cv2.COLOR_RGB2GRAY, ('bgr8', 'mono8'): cv2.COLOR_BGR2GRAY,
             ('mono8', 'rgb8'): cv2.COLOR_GRAY2RGB, ('mono8', 'bgr8'): cv2.COLOR_GRAY2BGR}
    return cv2.cvtColor(image, codes[(source, target)])


def _channels(encoding: str) -> int:
    try:
        return ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise ImageRejected('bad_format', f'image encoding must be one of {sorted(ENCODINGS)}, '
                                          f'got {_quote(encoding)}') from None


def _quote(text: Any) -> str:
    """repr of an untrusted string, cut to MAX_FORMAT_LENGTH characters (it goes into errors and logs)."""
    text = str(text)
    return repr(text[:MAX_FORMAT_LENGTH]) + ('...' if len(text) > MAX_FORMAT_LENGTH else '')


def _check_size(height: int, width: int, limits: ImageLimits | None) -> None:
    if height <= 0 or width <= 0:
        raise ImageRejected('empty', f'image has zero size ({width}x{height})')
    if limits is not None and height * width > limits.max_pixels:
        raise ImageRejected('too_many_pixels', f'image is {width}x{height} = {height * width} pixels, '
                                               f'over the limit of {limits.max_pixels}')


# ---------------------------------------------------------------------------- raw Image
def fill_image_msg(message: Any, image: np.ndarray, encoding: str = 'rgb8') -> Any:
    """Fills a sensor_msgs/Image (height, width, encoding, is_bigendian, step, data); returns it."""
    image = check_array(image, encoding)
    height, width = image.shape[:2]
    message.height = height
    message.width = width
    message.encoding = encoding
    message.is_bigendian = 0
    message.step = width * ENCODINGS[encoding]
    set_array(message, 'data', image.reshape(-1), np.uint8)
    return message


def image_from_msg(message: Any, want: str = 'rgb8', limits: ImageLimits | None = None) -> np.ndarray:
    """A sensor_msgs/Image as an array in ``want`` encoding; ImageRejected for anything inconsistent.

    Rows may be padded (``step`` > width * channels), as the message allows.
    """
    height, width, step = int(message.height), int(message.width), int(message.step)
    channels = _channels(message.encoding)
    _channels(want)
    _check_size(height, width, limits)
    if int(getattr(message, 'is_bigendian', 0)) not in (0, 1):
        raise ImageRejected('bad_layout', f'is_bigendian must be 0 or 1, got {message.is_bigendian}')
    row = width * channels
    if step < row:
        raise ImageRejected('bad_layout', f'step {step} is smaller than width * channels = {row} '
                                          f'for {width}x{height} {message.encoding}')
    data = get_array(message, 'data', np.uint8)
    if data.size != step * height:
        raise ImageRejected('bad_layout', f'data has {data.size} bytes, expected step * height = '
                                          f'{step} * {height} = {step * height}')
    rows = data.reshape(height, step)[:, :row]
    image = rows.reshape(height, width, channels) if channels > 1 else rows.reshape(height, width)
    return np.ascontiguousarray(convert(np.ascontiguousarray(image), message.encoding, want))


# ---------------------------------------------------------------------------- JPEG / PNG
def encode_jpeg(image: np.ndarray, encoding: str = 'rgb8', quality: int = 80) -> bytes:
    """JPEG bytes of an rgb8/bgr8/mono8 array (quality 1..100)."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f'jpeg quality must be an integer in 1..100, got {quality!r}')
    image = check_array(image, encoding)
    if encoding == 'rgb8':  # OpenCV encodes BGR
        image = convert(image, 'rgb8', 'bgr8')
    ok, buffer = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f'cv2 could not encode a {image.shape} image as JPEG')
    return buffer.tobytes()


def compressed_size(data: bytes) -> tuple[str, int, int]:
    """(kind, width, height) read from a JPEG or PNG header, without decoding the pixels."""
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        if len(data) < 24 or data[12:16] != b'IHDR':
            raise ImageRejected('undecodable', 'PNG stream without an IHDR header')
        width, height = struct.unpack('>II', data[16:24])
        return 'png', width, height
    if data[:2] == b'\xff\xd8':
        return ('jpeg',) + _jpeg_size(data)
    raise ImageRejected('undecodable', f'not a JPEG or PNG stream (starts with {data[:8].hex()})')


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first SOFn segment of a JPEG stream."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ImageRejected('undecodable', f'corrupt JPEG: no marker at byte {position}')
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack('>H', data[position + 2:position + 4])
        if length < 2:
            raise ImageRejected('undecodable', f'corrupt JPEG: segment length {length} at byte {position}')
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if position + 9 > len(data):
                break
            height, width = struct.unpack('>HH', data[position + 5:position + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        position += 2 + length
    raise ImageRejected('undecodable', 'JPEG stream without a frame header (SOF)')


def decode_compressed(data: Any, want: str = 'rgb8', limits: ImageLimits | None = None,
                      format: str = '') -> np.ndarray:
    """Decodes untrusted JPEG/PNG bytes into an array in ``want`` encoding, after checking limits.

    ``format`` is the CompressedImage format string ('' = sniff the bytes); a format that names
    neither JPEG nor PNG is refused, and so are bytes whose kind differs from the format named.
    """
    limits = limits or ImageLimits()
    _channels(want)
    raw = bytes(data) if not isinstance(data, bytes) else data
    if not raw:
        raise ImageRejected('empty', 'compressed image has no bytes')
    if len(raw) > limits.max_bytes:
        raise ImageRejected('too_many_bytes', f'compressed image has {len(raw)} bytes, over the limit of '
                                              f'{limits.max_bytes}')
    named = format_kind(format)
    kind, width, height = compressed_size(raw)
    if named is not None and named != kind:
        raise ImageRejected('bad_format', f'format says {_quote(format)} but the bytes are {kind.upper()}')
    _check_size(height, width, limits)
    flag = cv2.IMREAD_GRAYSCALE if want == 'mono8' else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), flag)
    if image is None or image.size == 0:
        raise ImageRejected('undecodable', f'cv2 could not decode the {kind.upper()} stream ({len(raw)} bytes)')
    if image.shape[:2] != (height, width):  # the header lied or the stream is odd
        raise ImageRejected('undecodable', f'decoded size {image.shape[1]}x{image.shape[0]} differs from the '
                                           f'header ({width}x{height})')
    return image if want != 'rgb8' else convert(image, 'bgr8', 'rgb8')


def format_kind(format: str) -> str | None:
    """'jpeg', 'png', or None for '' (sniff); ImageRejected for a format we do not decode."""
    if len(format or '') > MAX_FORMAT_LENGTH:
        raise ImageRejected('bad_format', f'compressed image format has {len(format)} characters '
                                          f'(at most {MAX_FORMAT_LENGTH})')
    text = (format or '').strip().lower()
    if not text:
        return None
    # "rgb8; jpeg compressed bgr8": the compression word is after the ';' when there is one
    words = text.split(';')[-1].replace(',', ' ').split()
    for word in words:
        if word in _FORMAT_WORDS:
            return _FORMAT_WORDS[word]
    raise ImageRejected('bad_format', f'compressed image format {_quote(format)} is not JPEG or PNG')


# ---------------------------------------------------------------------------- CompressedImage
def fill_compressed_msg(message: Any, image: np.ndarray, encoding: str = 'rgb8', quality: int = 80) -> Any:
    """Fills a sensor_msgs/CompressedImage with a JPEG of ``image`` (format 'jpeg'); returns it."""
    return fill_compressed_bytes(message, encode_jpeg(image, encoding, quality))


def fill_compressed_bytes(message: Any, jpeg: bytes, format: str = 'jpeg') -> Any:
    message.format = format
    set_array(message, 'data', np.frombuffer(jpeg, np.uint8), np.uint8)
    return message


def compressed_bytes(message: Any) -> bytes:
    """The data of a CompressedImage as bytes, from either backend's array type."""
    value = message.data
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return get_array(message, 'data', np.uint8).tobytes()


def image_from_compressed_msg(message: Any, want: str = 'rgb8', limits: ImageLimits | None = None) -> np.ndarray:
    return decode_compressed(compressed_bytes(message), want, limits, message.format)
