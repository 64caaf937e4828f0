# c66bot as a container: a static binary on distroless, run as a non-root
# user, the database on a volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t c66bot .
#   docker run -d --name c66bot --env-file /etc/c66bot/env \
#     -v c66bot-data:/data -p 8080:8080 c66bot
#
# The image has no shell, so it declares no HEALTHCHECK. Probe GET /healthz
# (alive) and GET /readyz (Slack connected, database answering) on port
# 8080 from the orchestrator, and run the full diagnosis on demand:
#
#   docker exec c66bot /c66bot doctor
#
# Operator commands reach the running bot through its admin socket on the
# volume, so they work the same way:
#
#   docker exec c66bot /c66bot backup /data/backup.db
#   docker exec c66bot /c66bot rekey
#
# Set C66BOT_SECRET_KEY from a secret store. Without it the bot generates
# /data/c66bot.db.key, on the same volume as the database it protects.

# Keep the Go version in step with go.mod; cmd/c66bot/dockerfile_test.go
# fails when they differ.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a fully static binary runs on distroless/static, which has no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/c66bot ./cmd/c66bot
# A new named volume takes the owner and mode of the image's directory, so
# /data is made here for the runtime user, private to it.
RUN mkdir -p /out/data && chmod 0700 /out/data

# distroless/static carries CA certificates (for Slack and Cloud 66 over
# HTTPS) and /etc/passwd entries for nonroot; the time zone database is
# compiled into the binary (time/tzdata).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/c66bot /c66bot
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV C66BOT_DB=/data/c66bot.db
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/c66bot"]
CMD ["serve"]
