# syntax=docker/dockerfile:1
# lomas-django: one image for the web server (gunicorn) and the Celery workers (see docker-compose.yml).
# The virtualenv is built as `make` builds .venv: requirements-torch.txt (CPU torch), requirements.txt,
# then requirements-nodeps.txt with --no-deps; test tools (requirements-dev.txt) stay out.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements-torch.txt requirements.txt requirements-nodeps.txt ./
# torch first, from the CPU index, so nothing pulls a CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu -r requirements-torch.txt \
 && pip install -r requirements.txt \
 && pip install --no-deps -r requirements-nodeps.txt

# Dex gRPC stubs, generated from accounts/dex/protos with the pinned grpcio-tools (kept out of the runtime image).
FROM python:3.11-slim AS dex-stubs
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-dev.txt ./
RUN pip install "$(grep '^grpcio-tools==' requirements-dev.txt)"
COPY accounts/dex/protos accounts/dex/protos
RUN python -m grpc_tools.protoc --proto_path=accounts/dex/generated=accounts/dex/protos \
    --python_out=. --grpc_python_out=. accounts/dex/generated/dex_api.proto

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 lomas
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=lomas.settings \
    LOMAS_VAR_DIR=/var/lib/lomas \
    LOMAS_DATA_DIR=/var/lib/lomas/data
WORKDIR /app
# The code belongs to root and is read-only for the service user; only /var/lib/lomas is writable.
COPY . .
COPY --from=dex-stubs /src/accounts/dex/generated accounts/dex/generated
RUN python -m compileall -q /app \
 && mkdir -p /var/lib/lomas/data /var/lib/lomas/static \
 && chown -R lomas:lomas /var/lib/lomas
USER lomas
EXPOSE 8000
# Liveness of the web process (DJANGO_ALLOWED_HOSTS must admit 127.0.0.1); a worker container replaces it
# with `celery inspect ping` (docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/live', timeout=4)"
# Web: the default (deploy/gunicorn.conf.py: WEB_CONCURRENCY processes of GUNICORN_THREADS threads).
# Worker: `celery -A lomas worker --queues query,dummy,cost --concurrency 2`.
CMD ["gunicorn", "lomas.wsgi", "--config", "deploy/gunicorn.conf.py"]
