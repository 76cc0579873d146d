"""This package's tests run on our runtime and message classes, also under `colcon test` on a
sourced ROS 2 (see dcdrl_ros.testing.use_our_runtime). The face tests share the astronaut photo
and a known-faces folder enrolled from it."""
import cv2
import numpy as np
import pytest

from dcdrl_ros.testing import use_our_runtime

use_our_runtime()


@pytest.fixture(scope='module')
def astronaut():
    from skimage import data
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope='module')
def known_dir(tmp_path_factory, astronaut):
    """A known-faces folder holding eileen.png, a crop of the astronaut's face."""
    folder = tmp_path_factory.mktemp('known')
    cv2.imwrite(str(folder / 'eileen.png'), cv2.cvtColor(astronaut[20:240, 120:320], cv2.COLOR_RGB2BGR))
    return str(folder)
