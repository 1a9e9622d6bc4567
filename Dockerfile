# syntax=docker/dockerfile:1
# commctl in a container:
#   docker build -t commctl .
#   docker run --rm -v "$PWD:/work" commctl validate comms/ --strict
#   docker run --rm -v "$PWD:/work" -e COMMCTL_HOST -e COMMCTL_CLIENT_KEY -e COMMCTL_CLIENT_SECRET commctl diff -f comms/
# The base is pinned to an exact Python and Debian release; bump it on purpose (and, in your own
# registry, pin its digest as well). Python 3.11 is the version CI tests.

FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /dist .

FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=build /dist /dist
RUN python -m pip install /dist/*.whl \
    && rm -rf /dist \
    && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin commctl
# Numeric, so that Kubernetes' runAsNonRoot can check it; state, cache and config live in its home.
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["commctl"]
CMD ["--help"]
