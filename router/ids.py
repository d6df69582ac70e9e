"""Random ids (decision ids, request ids) in the uuid4 text form, cheaply.

``uuid.uuid4()`` asks the operating system for 16 random bytes each time (a system call)
and builds a :class:`uuid.UUID` object; the hot path needs only the text. This takes the
OS's random bytes (the same source) 4 KiB at a time and formats them directly, with the
version and variant bits a uuid4 has, so ids stay unguessable and parse as UUIDs.
"""

from __future__ import annotations

import os

_POOL_BYTES = 4096
_pool = b""
_offset = _POOL_BYTES


def new_id() -> str:
    """A new random id in uuid4 form, e.g. ``"5b0e6c1e-8f3a-4c2d-9e1f-0a1b2c3d4e5f"``."""
    global _pool, _offset
    if _offset >= _POOL_BYTES:
        _pool = os.urandom(_POOL_BYTES)
        _offset = 0
    raw = _pool[_offset : _offset + 16]
    _offset += 16
    h = raw.hex()
    # version 4 in the 13th hex digit; variant 10xx in the 17th
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _forget_pool() -> None:
    """A forked child must not hand out its parent's ids."""
    global _offset
    _offset = _POOL_BYTES


os.register_at_fork(after_in_child=_forget_pool)
