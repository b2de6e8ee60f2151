"""onsale: a high-demand on-sale engine."""

__version__ = "0.1.0"
