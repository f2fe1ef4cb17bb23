package symphonytest

// Hooks for the chaos run (test/chaos): it must tell apart the events
// Symphony itself drops when a feed it expired on purpose is recreated from
// any other loss, so it needs the exact events an expiry dropped, and it must
// know whether a kill landed while a batch was delivered but not yet acked.

// ExpireFeedDropping makes a feed expire now, like [Agent.ExpireFeed], and
// returns the raw events it dropped: those still queued and those handed out
// in batches not yet acknowledged. Taking them in the same critical section
// as the expiry means no read, ack or emit can slip in between. ok is false
// when the feed was not live.
func (a *Agent) ExpireFeedDropping(id string) (dropped [][]byte, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, live := a.feeds[id]
	if !live {
		return nil, false
	}
	for _, e := range f.queue {
		dropped = append(dropped, e.raw)
	}
	for _, b := range f.batches {
		if b.state == batchInFlight {
			for _, e := range b.events {
				dropped = append(dropped, e.raw)
			}
		}
	}
	a.removeFeedLocked(f, true)
	return dropped, true
}

// BatchAcked reports whether the batch handed out under ackID on feed feedID
// has been acknowledged. known is false when the Agent does not remember that
// ackId (unknown feed, unknown or evicted ackId). A batch whose visibility
// timeout put its events back in the queue is known and not acked.
func (a *Agent) BatchAcked(feedID, ackID string) (acked, known bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.feeds[feedID]
	if !ok {
		return false, false
	}
	b, ok := f.batches[ackID]
	if !ok {
		return false, false
	}
	return b.state == batchAcked, true
}
