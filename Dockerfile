# OpenLFR's centre as a container: `openlfr serve --role central` on PostgreSQL.
#
#   docker build -t openlfr-central .
#   docker run -d --name openlfr -p 127.0.0.1:8000:8000 -v openlfr-data:/var/lib/openlfr \
#       -e OPENLFR_DATABASE_URL=postgresql+psycopg://openlfr:…@db.internal/openlfr openlfr-central
#
# The data folder (/var/lib/openlfr: encrypted images, the data key unless OPENLFR_KEY is given, the
# model cache) is a volume; the database is elsewhere. Put a TLS-terminating proxy in front
# (OPENLFR_TRUSTED_PROXIES names it). README: "Running a force's system".
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A dedicated unprivileged account owns the data folder; nothing runs as root.
RUN groupadd --system --gid 10001 openlfr \
    && useradd --system --uid 10001 --gid openlfr --home-dir /var/lib/openlfr --shell /usr/sbin/nologin openlfr \
    && install -d -o openlfr -g openlfr -m 0700 /var/lib/openlfr

WORKDIR /opt/openlfr
COPY pyproject.toml README.md ./
COPY src ./src
# The dependencies include psycopg, the PostgreSQL driver OPENLFR_DATABASE_URL=postgresql+psycopg://… names.
RUN python -m venv /opt/openlfr/venv \
    && /opt/openlfr/venv/bin/pip install . \
    && rm -rf /opt/openlfr/src /root/.cache

ENV PATH=/opt/openlfr/venv/bin:$PATH \
    HOME=/var/lib/openlfr \
    OPENLFR_HOME=/var/lib/openlfr \
    MPLCONFIGDIR=/tmp/matplotlib
# OPENLFR_DATABASE_URL, OPENLFR_KEY, OPENLFR_AUDIT_KEY, OPENLFR_AUDIT_CHECKPOINTS, OPENLFR_TRUSTED_PROXIES,
# OPENLFR_METRICS_TOKEN, OPENLFR_FORCE_NAME, OPENLFR_FORCE_CONTACT: given at `docker run` (-e or --env-file).

USER openlfr:openlfr
VOLUME ["/var/lib/openlfr"]
EXPOSE 8000

# Alive, not ready: a restart cannot fix an unreachable database (see /readyz for that).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["openlfr", "serve", "--role", "central", "--host", "0.0.0.0", "--port", "8000"]
