# syntax=docker/dockerfile:1
# The gateway (web chat, WeChat, staff console): its own small environment, no Rasa, no model.
#   docker build -f deploy/docker/gateway.Dockerfile -t registry.example.cn/ipbot-gateway:1.0 .

# Python 3.11: requirements-gateway.lock was resolved on it (its header; numpy 2.4 and scipy 1.17
# require ≥ 3.11); 3.11.10 came out with the Rasa image's 3.10.15.
# tests/unit/deploy/test_manifests.py checks that image and lock agree.

# ---- build: the environment -----------------------------------------------------------------
FROM python:3.11.10-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements-gateway.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements-gateway.lock \
    && /opt/venv/bin/pip check

# ---- runtime --------------------------------------------------------------------------------
FROM python:3.11.10-slim-bookworm
RUN groupadd --system --gid 10001 ipbot \
    && useradd --system --uid 10001 --gid ipbot --home-dir /nonexistent --shell /usr/sbin/nologin ipbot
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    BOT_VAR_DIR=/var/lib/ipbot \
    BOT_HOST=0.0.0.0 \
    BOT_PORT=8000
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY bot/ bot/
COPY data/dict/ data/dict/
# models/: the knowledge search's embedding cache (staff edits rebuild the index here);
# data/review/: where compose and Kubernetes mount REVIEW_TRAINING_DIR (a new volume takes this
# owner).
RUN mkdir -p /app/models /app/data/review /var/lib/ipbot \
    && chown ipbot:ipbot /app/models /app/data/review /var/lib/ipbot
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["python", "-m", "bot", "serve"]
