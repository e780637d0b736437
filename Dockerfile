FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY workers ./workers
COPY templates ./templates
RUN pip install --no-cache-dir -e . && useradd --system --home /var/lib/gateway gateway \
    && mkdir -p /var/lib/gateway && chown gateway /var/lib/gateway
USER gateway
