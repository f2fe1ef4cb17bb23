// Package subjects maps Symphony events to NATS subjects through a template
// such as "symphony.{pod}.{eventType}.{streamType}".
//
// NATS does not protect a publisher from itself: the Go client only rejects
// whitespace, and the server stores "*" and ">" literally unless the client
// runs pedantic. Every token that comes from event data is therefore
// sanitised here, so that no event can add a token, inject a wildcard or
// whitespace, or make a subject too long. Templates are compiled once at
// start-up ([Compile]) so that a bad template fails the start, not the first
// publish. The package never logs.
package subjects
