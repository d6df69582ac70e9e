# syntax=docker/dockerfile:1
# router: the HTTP routing service. Build: docker build -t router .
# Run (rules mounted read-only at /rules; an API key is required because the container
# listens on 0.0.0.0 and router refuses a non-loopback bind without keys):
#   docker run -p 8080:8080 -v "$PWD/rules:/rules:ro" -e ROUTER_API_KEYS=change-me router

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/router
ENV PATH=/opt/router/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY router ./router
# The README's install, on the exact versions CI tested (constraints.txt).
RUN pip install -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/router/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROUTER_RULES=/rules \
    ROUTER_HOST=0.0.0.0 \
    ROUTER_PORT=8080
RUN groupadd --system --gid 10001 router \
    && useradd --system --uid 10001 --gid router --no-create-home --shell /usr/sbin/nologin router
COPY --from=build /opt/router /opt/router
# Bundled rules as a default; mount a folder (e.g. a ConfigMap) over /rules in production.
COPY --chown=root:root rules /rules
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ROUTER_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["router"]
CMD ["serve"]
