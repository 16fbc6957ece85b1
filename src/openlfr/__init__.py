"""OpenLFR: live and retrospective facial recognition with privacy and accountability enforced in code."""

__version__ = "0.1.0"
