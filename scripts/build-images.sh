#!/usr/bin/env bash
# Builds the container images locally, without any image registry:
#   symbridge/nats-server:$TAG  nats-server (the version in go.mod) FROM scratch
#   symbridge/symbridge:$TAG    symbridge FROM scratch, with the host's CA bundle
# and, unless it exists, a throwaway RSA key pair for the compose demo in
# docker/secrets/ (the Agent simulator checks the bot's login JWT with it).
#
# There is no "FROM golang" build stage (it would need a registry): the static
# binaries are built here with CGO_ENABLED=0 and copied into the images.
#
# Usage: scripts/build-images.sh        (TAG=local by default)
#   TAG=v1.2.3 NATS_REPO=... SYMBRIDGE_REPO=... CA_BUNDLE=/path/ca.pem scripts/build-images.sh
#   NO_DEMO_KEY=1 skips the key pair.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${TAG:-local}"
NATS_REPO="${NATS_REPO:-symbridge/nats-server}"
SYMBRIDGE_REPO="${SYMBRIDGE_REPO:-symbridge/symbridge}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
export CGO_ENABLED=0

echo "== nats-server -> $NATS_REPO:$TAG"
mkdir -p "$ctx/nats/data"
go build -ldflags="-s -w" -o "$ctx/nats/nats-server" github.com/nats-io/nats-server/v2
cp docker/nats/Dockerfile docker/nats/nats.conf "$ctx/nats/"
docker build -q -t "$NATS_REPO:$TAG" "$ctx/nats"

echo "== symbridge $VERSION -> $SYMBRIDGE_REPO:$TAG"
mkdir -p "$ctx/symbridge"
go build -ldflags="-s -w -X main.version=$VERSION" -o "$ctx/symbridge/symbridge" ./cmd/symbridge
[ -r "$CA_BUNDLE" ] || { echo "CA bundle $CA_BUNDLE not found; set CA_BUNDLE" >&2; exit 1; }
cp "$CA_BUNDLE" "$ctx/symbridge/ca-certificates.crt"
cp Dockerfile "$ctx/symbridge/"
docker build -q -t "$SYMBRIDGE_REPO:$TAG" "$ctx/symbridge"

if [ -z "${NO_DEMO_KEY:-}" ] && [ ! -f docker/secrets/bot.pem ]; then
  echo "== demo key pair -> docker/secrets/bot.pem, bot.pub.pem"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out docker/secrets/bot.pem 2>/dev/null
  openssl pkey -in docker/secrets/bot.pem -pubout -out docker/secrets/bot.pub.pem
  # The containers run as nobody (65534) and read them through a bind mount.
  chmod 644 docker/secrets/bot.pub.pem
  if [ "$(id -u)" = 0 ]; then
    chown 65534:65534 docker/secrets/bot.pem && chmod 600 docker/secrets/bot.pem
  else
    chmod 644 docker/secrets/bot.pem   # a demo key: symbridge warns that others can read it
  fi
fi
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^($NATS_REPO|$SYMBRIDGE_REPO):$TAG " || true
