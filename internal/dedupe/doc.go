// Package dedupe remembers the message ids the bridge stored recently, so
// that a batch Symphony redelivers (an ackId that never reached the Agent, a
// restart of the read loop) is not published a second time.
//
// It is an optimisation, not the guarantee: JetStream's duplicate window
// (Nats-Msg-Id) is what keeps each event stored once. A Set forgets ids on
// purpose (bounded count, optional TTL) and loses them all on restart;
// forgetting never loses an event, it only costs a publish that JetStream
// then acknowledges as a duplicate.
//
// The caller must Mark an id only after its publish-ack (a duplicate ack
// counts): marking before would skip an event that was never stored if the
// publish then failed.
package dedupe
