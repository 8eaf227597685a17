# The dbkeeper image: the operator, its CLI, pg_dump/pg_restore and pgbouncer.
# One image serves the operator Deployment, the pooler pods and the backup jobs.
#
#   docker build -t dbkeeper:0.1.0 .
#
# For reproducible builds pin the base by digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the wheel, with the migration sets, CRDs and examples inside the package ----
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY constraints.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check -c constraints.txt build
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY migrations/ migrations/
COPY crds/ crds/
COPY examples/ examples/
RUN python -m build --wheel --outdir /dist

# ---- runtime ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="dbkeeper" \
      org.opencontainers.image.description="Kubernetes operator that keeps PostgreSQL databases healthy" \
      org.opencontainers.image.licenses="Apache-2.0"

# Debian's own builds; pinning exact versions would break on every security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client pgbouncer \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid, so Kubernetes can verify runAsNonRoot without running the image.
RUN groupadd --system --gid 65532 dbkeeper \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin dbkeeper

COPY --from=build /dist/ /tmp/dist/
COPY constraints.txt /tmp/dist/
RUN pip install --no-cache-dir --disable-pip-version-check -c /tmp/dist/constraints.txt \
       /tmp/dist/dbkeeper-*.whl \
    && rm -rf /tmp/dist \
    && dbkeeper --help >/dev/null

# The root filesystem is read-only in the pods: nothing writes bytecode, HOME is the
# writable /tmp volume.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["dbkeeper"]
CMD ["operator"]
