"""The ``openlfr`` command."""
