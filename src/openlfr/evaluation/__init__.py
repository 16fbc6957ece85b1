"""Measuring accuracy: protocols that turn a labelled dataset into figures a force can defend."""
