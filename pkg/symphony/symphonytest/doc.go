// Package symphonytest simulates a Symphony Agent, pod login and key manager
// over real HTTP(S), so the Symphony client and the bridge can be tested end
// to end without a Symphony pod, and so users can try their own bots.
//
// One [Agent] serves every endpoint the real-time APIs need under one base
// URL: RSA login (/login, /relay), certificate login (/sessionauth,
// /keyauth), /pod/v2/sessioninfo, /agent/v1/info, datafeed v2
// (/agent/v5/datafeeds...), datahose (/agent/v5/events/read) and the legacy
// datafeed v1 (/agent/v4/datafeed...). It follows the OpenAPI files of
// finos/symphony-api-spec; the Validator of the sibling package spec (which only tests import) checks that over real HTTP.
//
// Each feed is a queue with visibility-timeout semantics modelled on what
// Symphony documents for datafeed v2 (it is SQS-backed): a read hands out a
// batch under a fresh ackId; the batch is "in flight" until an ackId-carrying
// read acknowledges it, or until the visibility timeout puts its events back
// in the queue behind newer ones. Concurrent readers of one feed get disjoint
// events. Feeds expire when nobody reads them, sessions expire, feeds are
// limited, and faults ([Faults]) can be injected at runtime.
//
// Controls for tests, beside [Agent.Emit] and [Agent.SetFaults]:
// [Agent.ExpireFeed] and [Agent.ExpireFeedDropping] (a 400 on the next read,
// the latter returning the events Symphony drops with the feed),
// [Agent.ExpireSessions] (401), [Agent.InjectNext], [Agent.BatchAcked],
// [Agent.OnAck], and [Agent.HoldLists]: a one-shot barrier that holds tagged
// feed lists until n clients wait, then answers them together, so that
// instances starting at once all find no feed before any of them creates one.
// [Agent.Stats] and [Agent.Feeds] show what happened.
//
// [Generator] produces realistic events of every type, including the quirks
// Symphony really exhibits (several events sharing one id, events without
// id, stream ids in standard base64, unknown types), each carrying a serial
// number so tests can count them.
//
// The package imports pkg/symphony for event types only; it never imports
// NATS or the bridge.
package symphonytest
