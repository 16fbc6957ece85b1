"""Synthetic scenes with exact ground truth, for measuring the live pipeline at scale.

:mod:`openlfr.simulation.frames` composes LFW faces into 1080p frames; a walk-by video simulator
(people moving through the view) will build on the same pasting and placement functions.
"""

from openlfr.simulation.frames import (
    FRAME_SIZE,
    LFW_FACE_BOX,
    LFW_LANDMARKS,
    FaceSource,
    FaceTruth,
    add_sensor_noise,
    compose_frame,
    lfw_image_paths,
    make_background,
    paste_face,
    patch_extent,
    pick_lfw_faces,
    place_patches,
)

__all__ = [
    "FRAME_SIZE",
    "LFW_FACE_BOX",
    "LFW_LANDMARKS",
    "FaceSource",
    "FaceTruth",
    "add_sensor_noise",
    "compose_frame",
    "lfw_image_paths",
    "make_background",
    "paste_face",
    "patch_extent",
    "pick_lfw_faces",
    "place_patches",
]
