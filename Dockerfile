FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Pinned, hash-checked dependencies first (a layer that changes only with the lock file);
# then the gateway itself as a wheel: no source tree, no demo or test servers.
COPY requirements/prod.txt ./requirements/prod.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/prod.txt
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY gateway ./gateway
COPY workers ./workers
COPY templates ./templates
RUN pip install --no-cache-dir --no-deps . && rm -rf /src \
    && useradd --system --home /var/lib/gateway gateway \
    && mkdir -p /var/lib/gateway && chown gateway /var/lib/gateway
WORKDIR /var/lib/gateway
USER gateway
