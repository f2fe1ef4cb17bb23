// Package symphony is a client for the Symphony Agent's real-time event APIs
// (datafeed v2, datahose and the legacy datafeed v1) and their authentication,
// plus the event model the bridge routes on.
//
// The package never logs and never imports anything of NATS or of the bridge:
// it returns typed errors (see [APIError] and [Classify]) and lets the caller
// decide what to do with them.
//
// Events are decoded only as far as routing needs (see [Event]); each event
// keeps its raw JSON bytes exactly as the Agent sent them, so what is published
// downstream is byte-for-byte what Symphony delivered.
package symphony
