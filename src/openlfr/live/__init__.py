"""Live facial recognition: following faces across camera frames."""
