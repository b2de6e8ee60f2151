"""What text may contain at the boundary: no control characters.

Postgres refuses U+0000 outright, and the other control characters are never meant in a
name, a title or an e-mail address; refusing them at the door (``422 invalid_request``)
keeps a paid order from dying later in the committer's dead letters.
"""

from __future__ import annotations

from msgspec import Meta

#: One line: no C0/C1 control character at all. ``$(?!\n)``: a regex's ``$`` also matches
#: before a final line break, which would let one by (and JavaScript reads it alike).
LINE = Meta(pattern=r"^[^\x00-\x1f\x7f-\x9f]*$(?!\n)")
#: Free text: line breaks and tabs allowed, other control characters not.
TEXT = Meta(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")
#: An e-mail address as far as we check one: one @, no spaces, no control characters.
EMAIL = Meta(pattern=r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$(?!\n)")
