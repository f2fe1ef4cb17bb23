package symphony

import "time"

// SetRequestTimeoutForTest shortens the whole-request deadline, which
// ClientConfig.Validate keeps above the Agent's 30 s long poll, so a test can
// show that a trickling server is cut off.
func SetRequestTimeoutForTest(c *Client, d time.Duration) { c.timeout = d }

// IsDatafeedV2ID is isDatafeedV2ID, for the external tests.
var IsDatafeedV2ID = isDatafeedV2ID
