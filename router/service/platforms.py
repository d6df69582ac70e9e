"""What the rule language knows of the platforms, for the fronts that answer them.

The platform endpoints (:mod:`router.platforms`) read these names from here, through the
service, rather than from the engine's internals: which platforms a rule file can map, and
which route attribute names each platform's flat answer can lift to its top level.
"""

from router.engine.platforms import (
    ATTRIBUTE_NAMES,
    CONNECT,
    GENESYS,
    PLATFORMS,
    RESERVED_KEYS,
    TWILIO,
)

__all__ = ["ATTRIBUTE_NAMES", "CONNECT", "GENESYS", "PLATFORMS", "RESERVED_KEYS", "TWILIO"]
