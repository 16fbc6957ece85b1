"""The biometric core: images in, templates and scores out. No database, no files written.

The whole public surface::

    engine = load_engine()                        # openlfr.models: the default YuNet + SFace pack
    faces = engine.faces(bgr_image)              # detection, landmarks, quality, template
    face = main_face(faces)                      # the image's main face: largest box, then detector score
    score = similarity(face.template, other)     # cosine similarity, see openlfr.core.compare
    scores, rows = top_k(probe_templates, gallery_matrix, k=5)
"""

from openlfr.core.compare import similarity, similarity_matrix, top_k
from openlfr.core.engine import FaceEngine
from openlfr.core.quality import QualityPolicy
from openlfr.core.selection import by_prominence, main_face
from openlfr.core.types import Detection, Face, QualityReport

__all__ = [
    "Detection",
    "Face",
    "FaceEngine",
    "QualityPolicy",
    "QualityReport",
    "by_prominence",
    "main_face",
    "similarity",
    "similarity_matrix",
    "top_k",
]
