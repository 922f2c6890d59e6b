# ML Studio server image: gunicorn by default; the same image runs the Celery
# worker and beat (see docker-compose.yml).
FROM python:3.11-slim

# settings.py finds templates/ and static/ beside the package (BASE_DIR), so the
# code runs from /app (PYTHONPATH) rather than from the copy pip installs.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=portal.settings \
    PYTHONPATH=/app \
    DATA_DIR=/data

WORKDIR /app

RUN groupadd --system --gid 10001 mlstudio \
    && useradd --system --uid 10001 --gid mlstudio --home-dir /app \
       --no-create-home --shell /usr/sbin/nologin mlstudio \
    && mkdir -p /data \
    && chown mlstudio:mlstudio /data

# Runtime dependencies only (no [test] extra). Every dependency ships wheels,
# so no compiler is needed.
COPY . /app
RUN pip install . \
    && rm -rf /app/build /app/*.egg-info

USER mlstudio

# Build-time static collection. The throwaway settings exist only for this RUN;
# the real SECRET_KEY and hosts come from the environment at run time.
# STATIC_ROOT is $DATA_DIR/static: a fresh named volume on /data is seeded from
# here, and the compose `migrate` service re-runs collectstatic so an existing
# volume picks up the static files of a new image.
RUN DEBUG=0 \
    SECRET_KEY=build-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz \
    ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

VOLUME ["/data"]
EXPOSE 8000

CMD ["sh", "-c", "exec gunicorn portal.wsgi --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-2} --threads 4 --limit-request-line 0 --access-logfile -"]
