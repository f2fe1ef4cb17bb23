// Package consumers tests the consuming side as a user runs it: the example
// workers of examples/ (three Go processes and one C process built with the
// NATS C client) share one durable JetStream consumer fed by the real bridge
// from the simulated Agent, survive a SIGKILL and a SIGTERM of one of them,
// and replay the stream; README's `nats` CLI block runs as written, with no
// terminal.
//
// The tests need what .ci/run installs: Debian's libnats-dev (the C worker)
// and the nats CLI at v0.5.0. They sit behind the `consumers` build tag so
// that `go test ./...` needs neither:
//
//	apt-get install libnats-dev
//	go install github.com/nats-io/natscli/nats@v0.5.0
//	go test -race -tags consumers ./test/consumers/
package consumers
