"""The HTTP service (contract §2): app factory, middlewares, handlers, API models, OpenAPI.

Start at :func:`router.http.app.create_app`.
"""
