package symphony

import "fmt"

// For golden_test.go, in package symphony_test so that it can use the
// event generator (which imports this package).

// GoldenCorpusEvents returns every event the package's tests spell out:
// the synthetic events, the fast-path seeds and the broken events.
func GoldenCorpusEvents() []string {
	var out []string
	out = append(out, syntheticEvents...)
	out = append(out, fastPathSeeds...)
	return append(out, brokenEvents...)
}

// GoldenResult is what the golden files pin for one decoded event: its
// Msg-Id and routing fields; for an event that cannot be routed, only
// that (its fields are best effort) and its dead-letter id.
func GoldenResult(ev *Event) string {
	if ev.Err != nil {
		return "invalid " + RawMsgID(ev.Raw)
	}
	return fmt.Sprintf("%s id=%q type=%q ts=%d msg=%q initiator=%d stream=%v/%q/%q users=%v",
		MsgID(ev), ev.ID, ev.Type, ev.Timestamp, ev.MessageID, ev.InitiatorUserID,
		ev.HasStream, ev.StreamID, ev.StreamType, ev.AffectedUserIDs)
}
