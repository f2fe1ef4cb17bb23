# symbridge: a static binary in a FROM scratch image, run as nobody.
#
# No "FROM golang" build stage: our machines reach no image registry, so the
# binary is built on the host and taken from the build context together with
# the host's CA bundle (scripts/build-images.sh does all of this):
#
#   CGO_ENABLED=0 go build -trimpath -o CTX/symbridge ./cmd/symbridge
#   cp /etc/ssl/certs/ca-certificates.crt CTX/
#   docker build -f Dockerfile -t symbridge/symbridge:local CTX
#
# Mount the configuration at /etc/symbridge/config.yaml (and the bot's key
# wherever the configuration points); the health endpoints listen on 8080.
# Also carries `symbridge agent-sim` (the Agent simulator) and
# `symbridge healthcheck URL` for container health checks (no shell here).
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY symbridge /symbridge
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/symbridge"]
CMD ["run", "--config", "/etc/symbridge/config.yaml"]
