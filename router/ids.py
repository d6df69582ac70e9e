"""Random ids (decision ids, request ids) in the uuid4 text form, cheaply.

``uuid.uuid4()`` asks the operating system for 16 random bytes each time (a system call)
and builds a :class:`uuid.UUID` object; the hot path needs only the text. This takes the
OS's random bytes (the same source) 4 KiB at a time and formats them directly, with the
version and variant bits a uuid4 has, so ids stay unguessable and parse as UUIDs.
"""

from __future__ import annotations

import os

_POOL_BYTES = 4096
_pool = ""
"""Random bytes from the OS, as hex digits (two per byte)."""
_offset = 2 * _POOL_BYTES
_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))
"""A hex digit with its top two bits set to the uuid4 variant ``10``."""


def new_id() -> str:
    """A new random id in uuid4 form, e.g. ``"5b0e6c1e-8f3a-4c2d-9e1f-0a1b2c3d4e5f"``."""
    global _pool, _offset
    if _offset >= 2 * _POOL_BYTES:
        _pool = os.urandom(_POOL_BYTES).hex()
        _offset = 0
    h = _pool[_offset : _offset + 32]
    _offset += 32
    # version 4 in the 13th hex digit; variant 10xx in the 17th
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _forget_pool() -> None:
    """A forked child must not hand out its parent's ids."""
    global _offset
    _offset = 2 * _POOL_BYTES


os.register_at_fork(after_in_child=_forget_pool)
