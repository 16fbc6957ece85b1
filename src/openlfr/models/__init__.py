"""Model packs: where weights come from, how they are verified, cleaned and loaded."""

from openlfr.models.loader import load_engine, resolve_pack
from openlfr.models.packs import CUSTODY_PACK, DEFAULT_PACK, ModelPack, fused_pack, load_local_pack, sface_pack

__all__ = [
    "CUSTODY_PACK",
    "DEFAULT_PACK",
    "ModelPack",
    "fused_pack",
    "load_engine",
    "load_local_pack",
    "resolve_pack",
    "sface_pack",
]
