"""commctl: manage Capillary Loyalty target communications from the terminal."""

__version__ = "0.1.0"
