// Package bridge moves Symphony real-time events into NATS JetStream.
//
// A [Bridge] runs one loop per feed reader:
//
//	read(ackId) -> map -> publish the whole batch asynchronously -> wait for
//	every publish-ack -> only then does the next read carry the batch's ackId
//
// The Agent's ackId is the only cursor, and it is handed back only once every
// event of the batch is stored in JetStream (a duplicate publish-ack counts as
// stored). Anything else (a crash, a shutdown in the middle of a batch, NATS
// being down) leaves the batch un-acknowledged, and the Agent redelivers it.
// Redeliveries are harmless because every message carries a Nats-Msg-Id
// derived from the event's identity ([symphony.MsgID]): JetStream stores each
// event once within the stream's duplicate window. An optional [Deduper]
// (Config.Dedupe) skips re-publishing events the bridge stored recently; it
// is an optimisation, never the guarantee.
//
// Failures are sorted, never ignored:
//   - transient publish failures (timeouts, disconnection, no responders,
//     stalls, storage full) are retried with the same Msg-Id under a capped
//     backoff, without reading further, until they succeed or the context ends;
//   - permanent ones (an event over the server's max payload or the stream's
//     max message size, a wrong-stream or bad-subject error) and events that
//     cannot be decoded go to the dead-letter subject with the reason in the
//     Symphony-Dead-Letter-Reason header, their payload cut to fit; the batch
//     goes on. No event is ever dropped silently;
//   - read errors follow [symphony.Classify]: backoff, slow retry, or stop.
//
// Messages carry Symphony-* metadata headers and CloudEvents binary-mode
// headers (see [BuildMsg]); the payload is the event's JSON exactly as the
// Agent sent it.
//
// [Connect], [NewJetStream] and [EnsureStream] prepare the JetStream side:
// a connection that reconnects forever and buffers nothing behind the bridge's
// back, a JetStream context with bounded async publishing and an ack timeout,
// and a stream that is created when missing or verified (never updated
// blindly) when it exists.
package bridge
