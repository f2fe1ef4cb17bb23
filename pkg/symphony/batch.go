package symphony

import "fmt"

// decodeBatch decodes the body of a feed read: an event list (datafeed v2,
// datahose) or, with array set, a bare event array (datafeed v1). A body
// that does not decode is an error naming op, wrapping [ErrBadResponse] and
// saying what the body was (status, content type, size), never quoting it.
//
// An event nested deeper than encoding/json allows does not make the body
// undecodable (the batch would never be acked, redelivered forever, and the
// feed would stall behind it): it comes back as an Event with Err and its
// Raw bytes, which the bridge dead-letters, and the rest of the batch
// decodes (see [decoder.events]).
func decodeBatch(op string, resp response, array bool) (Batch, error) {
	// The body is ours (read into a fresh buffer): events may point into it.
	b, err := decodeBody(resp.body, array, true)
	if err != nil {
		return Batch{}, fmt.Errorf("%s: %w (%s)", op, err, resp.describe())
	}
	return b, nil
}
