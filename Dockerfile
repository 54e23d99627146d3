# Dockerfile - one image holding the four eskit services.
#
# Build stage: Debian 12 with the -dev packages, `make all`.
# Run stage: Debian 12 slim with only the runtime libraries, a non-root user
# (uid 10001) and the binaries in /usr/local/bin. Pick the service with the
# command:
#
#   docker build -t eskit:latest .
#   docker run --rm -e ESKIT_LISTEN=0.0.0.0:8081 -p 8081:8081 eskit:latest eskit-crud-store
#
# ESKIT_LISTEN defaults to 0.0.0.0:8080 in the image (a service's own default,
# 127.0.0.1, would not be reachable from outside the container); the
# HEALTHCHECK follows whatever port ESKIT_LISTEN names.
#
# tests/integration/test_deploy.py checks that the runtime packages below cover
# every library the binaries link (see docs/deploy.md).

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config \
      libmicrohttpd-dev libjansson-dev libpq-dev libcurl4-openssl-dev \
      libsqlite3-dev uuid-dev libpcre2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY tools/ tools/
COPY common/ common/
COPY services/ services/
RUN make -j"$(nproc)" all \
 && strip build/bin/eskit-*

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libpq5 libcurl4 libsqlite3-0 libuuid1 libpcre2-8-0 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 eskit \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/eskit \
      --no-create-home --shell /usr/sbin/nologin eskit \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/eskit
COPY --from=build /src/build/bin/eskit-event-store /src/build/bin/eskit-crud-store \
     /src/build/bin/eskit-consumer-store /src/build/bin/eskit-metrics-consumer \
     /usr/local/bin/

# The working directory is writable by the service user: the SQLite default
# (sqlite:data/*.db) lands in /var/lib/eskit/data. Mount a volume there to keep it.
WORKDIR /var/lib/eskit
USER 10001:10001
ENV ESKIT_LISTEN=0.0.0.0:8080
EXPOSE 8080 8081 8082 8083
STOPSIGNAL SIGTERM
# The port is whatever follows the last ':' of ESKIT_LISTEN (worked out by sh
# when the check runs, so `-e ESKIT_LISTEN=0.0.0.0:8081` moves the check too).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD port=$(echo "$ESKIT_LISTEN" | sed 's/.*://') \
   && curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || exit 1
CMD ["eskit-event-store"]
