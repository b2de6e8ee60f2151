"""Tickets: QR signing and rendering, check-in."""
