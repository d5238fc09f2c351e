# shapehint image: the API (`shapehint serve`) and the GPU worker (`shapehint worker`) share it.
# Build: docker build -t shapehint .   (CPU-only torch: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu)
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
# CUDA wheels by default, so the worker can use the GPU that compose reserves for it.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHAPEHINT_DATA_DIR=/data

WORKDIR /app

# torch first and on its own layer: it is by far the largest and changes least often.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

COPY pyproject.toml README.md ./
COPY shapehint ./shapehint
COPY api ./api
COPY worker ./worker
COPY jobs ./jobs
COPY models ./models
COPY store ./store
COPY migrations ./migrations
COPY webui ./webui
# Editable, so store.migrate finds /app/migrations beside the packages.
RUN pip install --no-cache-dir -e .

RUN useradd --create-home --uid 1000 shapehint \
    && mkdir -p /data \
    && chown shapehint /data
USER shapehint
VOLUME ["/data"]
EXPOSE 8000

# The API alone (workers run as their own containers); compose overrides this per service.
CMD ["shapehint", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-embedded-worker"]
