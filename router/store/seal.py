"""Sensitive values in a shared store: encrypted, or not kept at all (contract §8).

A value at a sensitive path (the union of every loaded ruleset's ``sensitive:`` paths,
``ROUTER_SENSITIVE_PATHS`` and ``context.ani``) is written to Redis only sealed: AES-GCM
(the ``cryptography`` package) with a 256-bit key derived from ``ROUTER_STORE_SECRET`` by
HKDF-SHA256, a random 96-bit nonce per value, and the value's path as associated data (so
a sealed value moved to another path does not open). Without ``ROUTER_STORE_SECRET`` the
value is left out, so another replica reads it as missing.

A sealed value is kept in place of the plain one as ``{"$sealed": "<base64url of nonce +
ciphertext>"}``; reading opens it again, and one that does not open (another secret, a
tampered byte) reads as missing, with a warning that names no value.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from router.sensitive import DEFAULT_PATHS, DROP, SensitivePaths
from router.store import codec

log = structlog.get_logger(__name__)

SEALED = "$sealed"
"""The key of a sealed value's one-key map."""
SEALED_MARK = b'"$sealed"'
"""Found in a stored value's bytes when it holds a sealed value (only then is it walked)."""
_INFO = b"router store sensitive values v1"
_NONCE_BYTES = 12

PathsOf = Callable[[], SensitivePaths]
"""Gives the paths sensitive now (they change when rule files reload)."""


def derive_key(secret: str) -> bytes:
    """The 256-bit AES key for ``secret`` (HKDF-SHA256; the same on every replica)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode("utf-8")
    )


class Sealer:
    """Seals sensitive values before they are written, and opens them when read.

    ``secret`` empty: sensitive values are dropped instead. ``paths`` is asked at each
    write, so a reload that marks a new path sensitive applies to the next write.
    """

    __slots__ = ("_aead", "_paths")

    def __init__(self, secret: str, paths: PathsOf = lambda: DEFAULT_PATHS) -> None:
        self._aead = AESGCM(derive_key(secret)) if secret else None
        self._paths = paths

    @property
    def encrypts(self) -> bool:
        """Whether sensitive values are kept encrypted (else they are not kept)."""
        return self._aead is not None

    # writing -----------------------------------------------------------------------

    def seal(self, namespace: str, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """One namespace's facts as they may be stored (the same object when nothing in
        them is sensitive)."""
        return self._paths().rewrite_namespace(namespace, values, self._seal_one)

    def seal_record(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """A cached conversation record ``{"state": …, "conversation": …}`` as it may be
        stored."""
        paths = self._paths()
        out: dict[str, Any] | None = None
        for namespace in ("state", "conversation"):
            value = record.get(namespace)
            if isinstance(value, Mapping):
                sealed = paths.rewrite_namespace(namespace, value, self._seal_one)
                if sealed is not value:
                    out = dict(record) if out is None else out
                    out[namespace] = sealed
        return record if out is None else out

    def _seal_one(self, path: str, value: Any) -> Any:
        if self._aead is None:
            return DROP
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, codec.dumps(value), path.encode("utf-8"))
        return {SEALED: base64.urlsafe_b64encode(nonce + sealed).decode("ascii")}

    # reading -----------------------------------------------------------------------

    def open(self, value: Any, where: str) -> Any:
        """``value`` (a stored namespace map, or a record of them, whose root path is
        ``where``: ``"state"``, or ``""`` for a record) with each sealed value opened."""
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] | None = None
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if isinstance(item, Mapping) and len(item) == 1 and SEALED in item:
                new = self._open_one(path, item[SEALED])
            elif isinstance(item, Mapping):
                new = self.open(item, path)
                if new is item:
                    continue
            else:
                continue
            if out is None:
                out = dict(value)
            if new is DROP:
                del out[key]
            else:
                out[key] = new
        return value if out is None else out

    def _open_one(self, path: str, text: Any) -> Any:
        if self._aead is None or not isinstance(text, str):
            log.warning("store_sealed_value_dropped", reason="no ROUTER_STORE_SECRET")
            return DROP
        try:
            raw = base64.urlsafe_b64decode(text.encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], path.encode())
            return codec.loads(plain)
        except (InvalidTag, ValueError):
            log.warning("store_sealed_value_dropped", reason="does not open with this secret")
            return DROP
