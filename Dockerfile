# lomas-django: one image for the web server (gunicorn) and the Celery workers.
# syntax=docker/dockerfile:1

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements-torch.txt requirements.txt requirements-nodeps.txt ./
# torch first, from the CPU index, so nothing pulls a CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu -r requirements-torch.txt \
 && pip install -r requirements.txt \
 && pip install --no-deps -r requirements-nodeps.txt

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 lomas
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=lomas.settings \
    LOMAS_VAR_DIR=/var/lib/lomas \
    LOMAS_DATA_DIR=/var/lib/lomas/data
WORKDIR /app
COPY --chown=lomas:lomas . .
RUN mkdir -p /var/lib/lomas/data && chown -R lomas:lomas /var/lib/lomas
USER lomas
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/live', timeout=4)"
# Web: the default. Worker: `celery -A lomas worker --queues query,dummy,cost --concurrency 2`.
CMD ["gunicorn", "lomas.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "120"]
