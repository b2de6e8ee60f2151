"""A ticket's QR image, as PNG or SVG: pure functions of the payload, cached.

A ticket's payload never changes (Ed25519 signatures are deterministic), so neither does
its image: rendering once per process and ticket is enough.
"""

from __future__ import annotations

import functools
import io

import qrcode
import qrcode.constants
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathFillImage

#: Pixels (PNG) or tenths of a millimetre (SVG) per module: a ~460 px PNG for a
#: 133-character payload, sharp on a phone held up to a scanner.
BOX_SIZE = 8
#: The quiet zone the QR standard requires around the code, in modules.
BORDER = 4
#: Images kept per process: a few KB each, so a few MB at most.
CACHE_SIZE = 2048


def _code(payload: str) -> qrcode.QRCode:
    # M recovers ~15% damage (a scratched screen, glare) and keeps the code small.
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER
    )
    code.add_data(payload)
    code.make(fit=True)
    return code


@functools.lru_cache(maxsize=CACHE_SIZE)
def png(payload: str) -> bytes:
    """A 1-bit greyscale PNG of the payload's QR code."""
    out = io.BytesIO()
    _code(payload).make_image(image_factory=PyPNGImage).save(out)
    return out.getvalue()


@functools.lru_cache(maxsize=CACHE_SIZE)
def svg(payload: str) -> bytes:
    """A standalone SVG document (one path on a white background) of the QR code."""
    out = io.BytesIO()
    _code(payload).make_image(image_factory=SvgPathFillImage).save(out)
    return out.getvalue()
