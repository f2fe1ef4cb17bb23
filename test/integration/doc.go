// Package integration tests symbridge against containerised NATS: a
// single JetStream server with authentication, TLS and a restart mid-stream;
// a three-node JetStream cluster on a private Docker network with its stream
// leader and the bridge's own server stopped, paused and cut off in turn, and
// its quorum lost; and the docker-compose stack (NATS, symbridge and the
// Agent simulator) brought up and down.
//
// The tests carry the build tag "integration" and need a Docker engine:
//
//	go test -tags integration ./test/integration/...
//
// No image is pulled: nats-server (from its Go module) and symbridge are built
// as static binaries with CGO_ENABLED=0 and copied into FROM scratch images
// (docker/nats/Dockerfile, Dockerfile), once per test run; an image whose
// content hash is already tagged is reused. SYMBRIDGE_NATS_IMAGE names another
// nats-server image instead (for example nats:2.12 where a registry is
// reachable). Without a reachable engine the tests skip; with
// SYMBRIDGE_REQUIRE_DOCKER=1 (CI) they fail instead. Ryuk, testcontainers'
// reaper, needs an image pull, so it is disabled (unless
// TESTCONTAINERS_RYUK_DISABLED is set otherwise) and every test removes its
// own containers, networks and volumes.
package integration
