# chatlab in a container: the bot installed from this repository, its data in the /data volume.
#
#   docker build -t chatlab .
#   docker run -d --name chatlab --env-file .env -v chatlab-data:/data --stop-timeout 40 chatlab
#
# SQLite by default (/data/chatlab.db); DATABASE_URL=postgresql://... selects PostgreSQL instead.
# compose.yaml runs either, with a PostgreSQL service for the second.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A system user with no shell and no password; it owns /data and nothing else.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin chatlab \
    && mkdir /data && chown chatlab:chatlab /data

# The package (with the PostgreSQL driver), built from a
# copy of the repository that is removed afterwards: the image runs the installed package.
COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY cogs /src/cogs
RUN pip install "/src[postgres]" && rm -rf /src

USER chatlab
WORKDIR /data
VOLUME /data

# Relative paths in an --env-file (.env.example's DATABASE_PATH=chatlab.db) land in /data too.
ENV DATABASE_PATH=/data/chatlab.db \
    HEARTBEAT_FILE=/data/chatlab.heartbeat

# The bot touches HEARTBEAT_FILE while it is connected to Discord (every shard of the process);
# the check reads its age (HEARTBEAT_MAX_AGE, 90 s by default) without the secrets and without
# importing discord. Discord lets a bot start about one shard every 5 s, so the start period
# leaves a process running up to ~30 shards time to connect them all before a failure counts.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "-m", "bot", "health"]

# SIGTERM: no new questions, answers in flight finish (up to SHUTDOWN_GRACE_SECONDS, 25 s by
# default), then the bot closes. Docker waits 10 s before SIGKILL unless told otherwise:
# `docker run --stop-timeout 40`, `docker stop -t 40`, compose's stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
