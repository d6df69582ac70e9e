"""Twilio's request signature (``X-Twilio-Signature``), checked in constant time.

Twilio signs each webhook with the account's auth token: the base64 HMAC-SHA1 of the full
URL it requested followed by every POST parameter, sorted by name, as ``name + value``
(https://www.twilio.com/docs/usage/webhooks/webhooks-security). A JSON body is signed
through the URL instead: its SHA-256 is the URL's ``bodySHA256`` query parameter. Twilio
may sign the URL with or without its default port, so both are tried. The tests prove
this module against Twilio's own ``RequestValidator``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

SIGNATURE_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio sends for a request to ``url`` with these POST parameters."""
    signed = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_matches(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]],
    offered: str,
    *,
    body: bytes | None = None,
) -> bool:
    """Whether ``offered`` is Twilio's signature of this request (constant-time compares).

    ``params`` are the form parameters; for a JSON request pass ``body`` instead: it must
    hash to the URL's ``bodySHA256``, and the signature then covers the URL alone.
    """
    pairs = list(params)
    body_ok = True
    if body is not None:
        hashes = [v for k, v in parse_qsl(urlsplit(url).query) if k == "bodySHA256"]
        expected = hashlib.sha256(body).hexdigest()
        body_ok = bool(hashes) and hmac.compare_digest(expected, hashes[0].lower())
        pairs = []
    wanted = offered.strip().encode("utf-8", "surrogateescape")
    matched = False
    for candidate in _port_variants(url):
        computed = twilio_signature(auth_token, candidate, pairs).encode()
        matched |= hmac.compare_digest(computed, wanted)
    return body_ok and matched


def signed_url(request: web.Request, *, trust_proxy: bool) -> str:
    """The URL Twilio requested: scheme and host as this server saw them, or, with
    ``trust_proxy``, as ``X-Forwarded-Proto``/``X-Forwarded-Host`` say (the first of each
    list: the proxy nearest Twilio); then the path and query exactly as sent."""
    scheme, host = request.scheme, request.host
    if trust_proxy:
        scheme = _first(request.headers.get("X-Forwarded-Proto")) or scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or host
    return f"{scheme}://{host}{request.raw_path}"


def _first(value: str | None) -> str:
    return "" if value is None else value.split(",", 1)[0].strip()


def _port_variants(url: str) -> list[str]:
    """``url`` as given, and with its scheme's default port added (or removed when given):
    only the host part changes, the rest of the URL stays byte for byte."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return [url]
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # an IPv6 literal: [::1]:8080
        close = hostport.find("]") + 1
        host, port = hostport[:close], hostport[close:]
    else:
        host, colon, digits = hostport.partition(":")
        port = colon + digits
    if port:
        if not port[1:].isdigit():
            return [url]
        other = host
    else:
        default = _DEFAULT_PORTS.get(scheme.lower())
        if default is None:
            return [url]
        other = f"{host}:{default}"
    return [url, f"{scheme}://{userinfo}{at}{other}{tail}"]
