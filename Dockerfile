# One image for every Morphospace role; docker-compose.yml picks the command per service.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/morphospace
# CPU torch first; on a GPU node install the CUDA build of the same version instead.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY app app
COPY callbacks callbacks
COPY components components
COPY core core
COPY flows flows
COPY streaming streaming
COPY assets assets
RUN pip install -e . gunicorn
RUN useradd --create-home morphospace
USER morphospace
EXPOSE 8050
# Inside a container the app must listen beyond loopback; compose publishes it on 127.0.0.1 only.
ENV MORPHOSPACE_HOST=0.0.0.0
# Threads and a long timeout: a cold live start (torch and UMAP imports) can pass gunicorn's 30 s.
CMD ["gunicorn", "--bind", "0.0.0.0:8050", "--workers", "2", "--threads", "4", "--timeout", "120", "app.wsgi:server"]
