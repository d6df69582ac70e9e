"""The ops page and the agent card: server-rendered pages over the decision service.

``/ops`` (and its feed and static files) sits behind the API's auth, with a Basic-auth
challenge so a browser prompts; ``/agent/card/{decision_id}`` needs no key but a signed,
expiring link. Templates (Jinja2, autoescaped) and static files ship inside this package:
no build step, nothing fetched from elsewhere at run time.
"""

from router.web.routes import ROUTE_NAMES, add_routes

__all__ = ["ROUTE_NAMES", "add_routes"]
