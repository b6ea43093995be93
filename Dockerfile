# clinic-events: the Slack bot (Socket Mode) and the web upload server in one process, or a
# scale-out worker (`worker` as the command).
#
#   docker build -t clinic-events .
#   docker run --rm --env-file .env -p 3000:3000 -v clinic-events-data:/data \
#       --stop-timeout 60 clinic-events
#
# Settings come from the environment (see .env.example and README.md). The image listens on
# 0.0.0.0, so the service refuses to start without UPLOAD_TOKEN (or
# ALLOW_UNAUTHENTICATED_UPLOADS=true when a proxy in front checks who uploads).
FROM python:3.11.14-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN useradd --create-home --uid 10001 --user-group app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when
# pyproject.toml changes, not on every code change.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code, installed as a regular (non-editable) package; the source tree is removed.
# The check runs from / so that it imports the installed package, not /src: it fails the
# build if the upload page (bot/web/static, package data) did not make it into the package.
COPY README.md ./
COPY processing ./processing
COPY bot ./bot
RUN pip install --no-deps . \
    && cd / && rm -rf /src \
    && python -c 'import bot.web as web; assert (web.STATIC_DIR / "index.html").is_file(), "bot/web/static is missing from the installed package: pyproject.toml needs package-data for it"'

# The job store (SQLite, DATA_DIR): jobs and reports survive a restart when /data is a volume.
RUN mkdir /data && chown app:app /data
VOLUME /data

USER app
WORKDIR /home/app
# Build matplotlib's font cache now, so the first chart does not wait for it.
RUN python -c 'import matplotlib.font_manager'

ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
EXPOSE 3000

# /health answers 503 once Slack has been unreachable for over a minute, or when the job store
# takes no writes. The proxy handler is
# emptied so that an HTTP(S)_PROXY set for S3 or Slack never applies to this local request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=4)"]

# Exec form: clinic-events is PID 1 and receives SIGTERM itself. It then takes no new work,
# lets running jobs finish for SHUTDOWN_GRACE_SECONDS (default 30), hands the rest back (they
# run again when it is back; a streamed upload cannot and fails saying so), and exits. `docker stop` waits only 10 s before SIGKILL unless told
# otherwise: use `docker stop -t 60` / `docker run --stop-timeout 60` (compose:
# stop_grace_period), i.e. more than SHUTDOWN_GRACE_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["clinic-events"]
CMD ["serve"]
