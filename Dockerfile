# One image for the web (gunicorn, the default command), the worker
# (python manage.py rundramatiq) and one-off commands (python manage.py
# migrate | queue_status | outbox_requeue ...). docs/operations.md, "Containers".
#
#   docker build -t payshift-signup .
#   docker build --build-arg BASE_IMAGE=payshift-base:bookworm -t payshift-signup .
#       (no registry: a Debian bookworm base made by scripts/docker-base)
#   docker build --target mailsink -t payshift-signup-mailsink .
#       (development: the project's SMTP sink, for compose.yaml)
#
# The base: any Debian bookworm with Python 3.11 as `python3` (and its venv
# module). Every Python dependency is a wheel from the hashed lock
# (requirements/prod.txt): no compiler in either stage.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- builder: the locked dependencies and the project's wheel in a venv -------
FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY requirements/prod.txt deploy/image/build-requirements.txt /build/
# Every package pinned and hash-checked, wheels only (nothing compiled).
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r /build/prod.txt \
 && python3 -m venv /opt/buildtools \
 && /opt/buildtools/bin/pip install --require-hashes --only-binary=:all: \
        -r /build/build-requirements.txt
# The project: its wheel holds core, signup and messaging without their tests
# (pyproject's package list); installed with --no-deps: the lock has the rest.
COPY pyproject.toml /build/src/
COPY core /build/src/core
COPY signup /build/src/signup
COPY messaging /build/src/messaging
RUN cd /build/src \
 && /opt/buildtools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /build/wheels . \
 && /opt/venv/bin/pip install --no-deps --no-index /build/wheels/*.whl \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime -----------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
# The service's settings are read from the environment at start-up
# (docs/configuration.md); these only place things inside the image.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=core.settings \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000 \
    WEB_CONCURRENCY=2
# A user of its own, by number (Kubernetes' runAsNonRoot checks the number);
# written into /etc/passwd directly: a minimal base has no useradd.
RUN echo "payshift:x:10001:10001:Payshift signup:/app:/usr/sbin/nologin" >> /etc/passwd \
 && echo "payshift:x:10001:" >> /etc/group
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY manage.py deploy/image/healthcheck.py /app/
# Static files (admin, Swagger UI) collected now, as a deployment does;
# WhiteNoise serves them from gunicorn. The settings refuse to load without
# these: throwaway values that exist only in this step.
RUN SECRET_KEY=collectstatic-at-build-time-only ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --no-input -v 0 \
 && rm -f /tmp/collectstatic.sqlite3
# Root owns the code and the static files; the service writes only to /tmp
# (gunicorn's heartbeat files and control socket, the metric files of
# prometheus-client's multiprocess mode): a read-only root file system works
# with /tmp writable.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]
# Bind: gunicorn's own default with PORT set is 0.0.0.0:$PORT (8000);
# workers: gunicorn's WEB_CONCURRENCY (2). core.gunicorn_conf: the log
# format, multi-worker metrics and the JSON-error worker (gunicorn.conf.py in
# a checkout loads the same).
CMD ["gunicorn", "--config", "python:core.gunicorn_conf", "--access-logfile", "-", \
     "--control-socket", "/tmp/gunicorn.ctl", "core.wsgi"]

# --- mailsink: development only (compose.yaml's mail service) ----------------
# The runtime image plus aiosmtpd (a development dependency, locked in
# requirements/mailsink.txt with the same versions as prod.txt): the
# project's SMTP sink on 0.0.0.0:1025, printing every mail to its log.
FROM runtime AS mailsink
USER root
COPY requirements/mailsink.txt /tmp/mailsink.txt
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/mailsink.txt \
 && rm /tmp/mailsink.txt
COPY deploy/image/mailsink.py /app/
USER 10001:10001
EXPOSE 1025
CMD ["python", "/app/mailsink.py"]

# The default target: the service's image (last stage wins otherwise).
FROM runtime
