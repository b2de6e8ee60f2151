"""Promo codes: discounts an organizer hands out, each use taken with a hold's tickets."""
