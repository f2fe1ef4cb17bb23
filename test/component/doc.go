// Package component holds symbridge's component tests: the real Symphony
// client and the real bridge loop, over real HTTP against the Agent simulator
// (every request and response checked against the official OpenAPI files),
// storing into a real embedded JetStream.
//
// They prove the delivery guarantees end to end, which the unit tests of each
// package cannot: each time the simulator receives an ackId, the harness
// checks that every event of the acknowledged batch is already in the stream,
// and at the end it counts every generated event by its serial (lost: emitted
// but not stored; duplicated: stored twice).
//
// The package has no code of its own; the tests are in package component_test.
package component
