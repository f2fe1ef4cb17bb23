package symphony

import (
	"context"
	"time"
)

// SetRequestTimeoutForTest shortens the whole-request deadline, which
// ClientConfig.Validate keeps above the Agent's 30 s long poll, so a test can
// show that a trickling server is cut off.
func SetRequestTimeoutForTest(c *Client, d time.Duration) { c.timeout = d }

// IsDatafeedV2ID is isDatafeedV2ID, for the external tests.
var IsDatafeedV2ID = isDatafeedV2ID

// CreateFeedForTest makes f create a feed of its own and read it, whatever
// is listed or recorded: a test's way to have two feeds of one tag, as an
// instance that decided alone leaves behind.
func CreateFeedForTest(ctx context.Context, f *DatafeedV2) (string, error) {
	id, err := f.create(ctx)
	if err == nil {
		f.setFeed(id, time.Now())
	}
	return id, err
}
