"""rqt_plot of the real ROS 2 plots a field of /dcdrl/learner/stats published by a ROS-free node.

The publisher is ours (no rclpy), with the learner's type and QoS (dcdrl_msgs/TrainingStats, best
effort, keep-last 5, header stamped with the node's clock: rqt_plot puts a stamped message at its
stamp). `ros2 run rqt_plot rqt_plot /dcdrl/learner/stats/eval_return` runs on the `ros2_ws` build of
this workspace, in an X server (Xvfb) the test starts; the screen is read with `xwd -root` and parsed
here. One rqt_plot, two screenshots: while the publisher exists but sends nothing (the curve is
registered: its legend is drawn, the plot area holds no curve) and after it starts sending a moving
value (the curve crosses the plot). Both PNGs are saved under the test's tmp dir.
"""
from __future__ import annotations

import os
import select
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dcdrl_ros import ros2_install
from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds, pytest.mark.slow]

TIMEOUT = 120.0          # start-up of X, ROS 2 and Qt on a loaded 2-core machine
SCREEN = (1024, 768)
WINDOW = (1000, 700)
FIELD = '/dcdrl/learner/stats/eval_return'
CURVE_RGB = (0, 0, 255)  # rqt_plot's first curve is Qt.blue
# A learner stand-in: the learner's topic, type and QoS; sends once told 'go' on stdin.
PUBLISHER = '''
import math, sys
from dcdrl_ros import ros
from dcdrl_msgs.msg import TrainingStats
ros.init(args=[])
node = ros.Node('learner', namespace='/dcdrl')
publisher = node.create_publisher(
    TrainingStats, 'learner/stats', ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
print('publisher ready', flush=True)
if sys.stdin.readline().strip() != 'go':
    raise SystemExit('expected go')
count = [0]
def tick():
    count[0] += 1
    message = TrainingStats(eval_return=100.0 * math.sin(count[0] / 8.0), updates=count[0])
    message.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(message)
node.create_timer(0.05, tick)
print('publishing', flush=True)
try:
    ros.spin(node)
except KeyboardInterrupt:
    pass
'''


# --- screenshots: XWD (what `xwd` writes) to RGB, and what a screenshot shows ------------------------

def read_xwd(data: bytes) -> np.ndarray:
    """An XWD ZPixmap (TrueColor, 24 or 32 bits a pixel) as a (height, width, 3) uint8 RGB array.

    The header is 25 big-endian 32-bit words; pixels follow the name and the colour map. Pixels are
    bits_per_pixel wide (Xvfb's depth-24 screen is written packed, 3 bytes a pixel, with lines padded
    to bytes_per_line), in the byte order the header names, channels where its masks say.
    """
    if len(data) < 100:
        raise ValueError(f'not an XWD image: {len(data)} bytes')
    words = struct.unpack('>25I', data[:100])
    header_size, pixmap_format, width, height = words[0], words[2], words[4], words[5]
    byte_order, bits_per_pixel, bytes_per_line = words[7], words[11], words[12]
    masks, colours = words[14:17], words[19]
    if pixmap_format != 2 or bits_per_pixel not in (24, 32):
        raise ValueError(f'XWD format {pixmap_format} with {bits_per_pixel} bits a pixel: want ZPixmap, 24/32')
    step = bits_per_pixel // 8
    offset = header_size + colours * 12
    if len(data) < offset + height * bytes_per_line:
        raise ValueError('XWD image is truncated')
    lines = np.frombuffer(data, np.uint8, count=height * bytes_per_line, offset=offset)
    pixels = lines.reshape(height, bytes_per_line)[:, :width * step].reshape(height, width, step)
    if byte_order == 0:  # LSBFirst: least significant byte first
        pixels = pixels[..., ::-1]
    value = np.zeros((height, width), np.uint32)
    for index in range(step):
        value = (value << 8) | pixels[..., index]
    channels = []
    for mask in masks:
        shift = (mask & -mask).bit_length() - 1
        channels.append(((value & mask) >> shift).astype(np.uint8))
    return np.stack(channels, axis=-1)


def curve_extent(image: np.ndarray, rgb: tuple[int, int, int] = CURVE_RGB, tolerance: int = 60) -> tuple[int, int]:
    """(columns, rows) holding a pixel of the curve's colour: how far a curve of that colour spreads."""
    hit = np.all(np.abs(image.astype(np.int16) - np.array(rgb, np.int16)) <= tolerance, axis=-1)
    return int(hit.any(axis=0).sum()), int(hit.any(axis=1).sum())


def grid_pixels(image: np.ndarray) -> int:
    """Pixels of matplotlib's grey grid (rqt_plot draws its grid 'gray'): the plot area is drawn."""
    return int(np.all(image == 128, axis=-1).sum())


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image
    Image.fromarray(image).save(path)


# --- an X server of the test's own ------------------------------------------------------------------

class VirtualScreen:
    """Xvfb on the first free display (it reports the number it took on a pipe: -displayfd), stopped
    by its pid."""

    def __init__(self, log: Path, size: tuple[int, int] = SCREEN) -> None:
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                ['Xvfb', '-displayfd', str(write_end), '-screen', '0', f'{size[0]}x{size[1]}x24', '-nolisten', 'tcp'],
                pass_fds=(write_end,), stdout=log.open('wb'), stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            os.close(write_end)
        reported = b''
        deadline = time.monotonic() + TIMEOUT
        try:   # Xvfb writes the number, then '\n' (two writes: closing the pipe early would kill it)
            while not reported.endswith(b'\n') and time.monotonic() < deadline:
                ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(read_end, 64) if ready else b''
                if not chunk:
                    break
                reported += chunk
        finally:
            os.close(read_end)
        number = reported.decode().strip()
        if not number.isdigit():
            self.stop()
            raise RuntimeError(f'Xvfb did not report a display within {TIMEOUT} s: {log.read_text()[-2000:]}')
        self.display = f':{number}'

    def run(self, *argv: str, timeout: float = 30.0) -> bytes:
        result = subprocess.run(argv, env=dict(os.environ, DISPLAY=self.display), capture_output=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f'{argv} failed ({result.returncode}): {result.stderr.decode(errors="replace")}')
        return result.stdout

    def screenshot(self) -> np.ndarray:
        return read_xwd(self.run('xwd', '-root', '-silent'))

    def wait_for_screen(self, predicate: Callable[[np.ndarray], bool], timeout: float, what: str,
                        alive: ChildProcess | None = None) -> np.ndarray:
        """Screenshots until one satisfies ``predicate``; fails after ``timeout`` s or if ``alive`` exits."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.screenshot()
            if predicate(image):
                return image
            if alive is not None and alive.process.poll() is not None:
                raise RuntimeError(f'{alive.argv} exited ({alive.process.returncode}) before {what}: '
                                   + '\n'.join(alive.lines[-30:]))
            if time.monotonic() > deadline:
                raise TimeoutError(f'{what}: not on screen within {timeout} s (curve extent {curve_extent(image)}, '
                                   f'grid pixels {grid_pixels(image)})')
            time.sleep(0.5)   # interval between screenshots of a bounded poll

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def screen(tmp_path):
    missing = [tool for tool in ('Xvfb', 'xwd', 'xdotool') if shutil.which(tool) is None]
    if missing:
        why = f'{", ".join(missing)} not installed (scripts/ros2_apt_deps.sh installs them)'
        if ros2_install.required():
            pytest.fail(f'{ros2_install.REQUIRE_VAR}=1 but {why}', pytrace=False)
        pytest.skip(why)
    display = VirtualScreen(tmp_path / 'xvfb.log')
    yield display
    display.stop()


# --- tests -------------------------------------------------------------------------------------------

def _xwd_bytes(rgb: np.ndarray, bits_per_pixel: int, byte_order: int = 0, pad_to: int = 32) -> bytes:
    """An XWD image of ``rgb`` as an X server writes one (masks 0xff0000, 0xff00, 0xff; no colour map)."""
    height, width, _ = rgb.shape
    step = bits_per_pixel // 8
    bytes_per_line = -(-width * step // (pad_to // 8)) * (pad_to // 8)
    name = b'test\0'
    header = struct.pack('>25I', 100 + len(name), 7, 2, 24, width, height, 0, byte_order, 32, byte_order, pad_to,
                         bits_per_pixel, bytes_per_line, 5, 0xff0000, 0xff00, 0xff, 8, 256, 0, width, height, 0, 0, 0)
    value = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    order = '<' if byte_order == 0 else '>'
    body = value.astype(order + 'u4').view(np.uint8).reshape(height, width, 4)
    body = body[..., :step] if byte_order == 0 else body[..., 4 - step:]
    lines = np.zeros((height, bytes_per_line), np.uint8)
    lines[:, :width * step] = body.reshape(height, width * step)
    return header + name + lines.tobytes()


@pytest.mark.parametrize('bits_per_pixel, byte_order', [(24, 0), (32, 0), (32, 1)])
def test_read_xwd_decodes_packed_and_padded_pixels(bits_per_pixel, byte_order):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (7, 13, 3), dtype=np.uint8)   # odd width: lines are padded
    assert np.array_equal(read_xwd(_xwd_bytes(rgb, bits_per_pixel, byte_order)), rgb)


def test_read_xwd_refuses_what_it_cannot_decode():
    with pytest.raises(ValueError, match='not an XWD'):
        read_xwd(b'\0' * 10)
    image = bytearray(_xwd_bytes(np.zeros((2, 2, 3), np.uint8), 32))
    image[44:48] = struct.pack('>I', 16)   # bits_per_pixel, the 12th header word
    with pytest.raises(ValueError, match='16 bits a pixel'):
        read_xwd(bytes(image))
    with pytest.raises(ValueError, match='truncated'):
        read_xwd(_xwd_bytes(np.zeros((2, 2, 3), np.uint8), 32)[:-1])


def test_curve_extent_counts_columns_and_rows_of_the_colour():
    image = np.full((50, 80, 3), 255, np.uint8)
    image[10, 5:45] = CURVE_RGB           # a horizontal stroke, 40 columns
    image[20:30, 60] = (30, 30, 230)      # within the tolerance: 10 rows
    image[40, :] = (128, 128, 128)        # grid: not the curve
    assert curve_extent(image) == (41, 11)
    assert grid_pixels(image) == 80


def test_rqt_plot_plots_a_field_of_a_ros_free_learner_topic(ros2_ws, screen, tmp_path):
    domain = fresh_domain_id()
    home = tmp_path / 'home'        # rqt keeps plugin paths and perspectives in ~/.config: start fresh
    runtime_dir = tmp_path / 'xdg'
    home.mkdir()
    runtime_dir.mkdir(mode=0o700)
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                              DISPLAY=screen.display, HOME=str(home), XDG_RUNTIME_DIR=str(runtime_dir))
    with ChildProcess([sys.executable, '-c', PUBLISHER], env=loopback_env(domain)) as publisher:
        publisher.wait_for_line('publisher ready', TIMEOUT)
        rqt = ChildProcess(['ros2', 'run', 'rqt_plot', 'rqt_plot', FIELD], env=env)
        try:
            # Without a window manager the window opens at 350x170: make the plot big enough to judge.
            window = screen.run('xdotool', 'search', '--sync', '--onlyvisible', '--name', 'rqt_plot__Plot',
                                timeout=TIMEOUT).split()[0].decode()
            screen.run('xdotool', 'windowsize', window, str(WINDOW[0]), str(WINDOW[1]))

            # Control: the curve is registered (its legend sample is drawn) but nothing was sent.
            empty = screen.wait_for_screen(
                lambda image: grid_pixels(image) > 4000 and curve_extent(image)[0] > 0, TIMEOUT,
                'the empty plot with its legend', alive=rqt)
            save_png(empty, tmp_path / 'rqt_plot_empty.png')
            legend_columns, _ = curve_extent(empty)
            assert legend_columns < 100, f'the plot shows {legend_columns} columns of curve before any data'

            publisher.send_line('go')
            publisher.wait_for_line('publishing', TIMEOUT)
            plotted = screen.wait_for_screen(
                lambda image: curve_extent(image)[0] > 0.4 * WINDOW[0] and curve_extent(image)[1] > 150, TIMEOUT,
                'a curve across the plot', alive=rqt)
            save_png(plotted, tmp_path / 'rqt_plot_curve.png')
        finally:
            # SIGINT to the group (`ros2 run` and rqt_plot), SIGKILL if it is still there after 20 s.
            code = rqt.stop(timeout=20)
        print(f'rqt_plot exit code {code} (SIGINT); screenshots in {tmp_path}')
