"""Search indexes over large galleries: the custody image database's index and synthetic templates to measure it."""

from openlfr.index.custody_index import CustodyIndex, IndexParams

__all__ = ["CustodyIndex", "IndexParams"]
