package symphony

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxDatahoseTag is V5EventsReadBody.tag's maxLength (minLength 1), in
// characters (runes).
const MaxDatahoseTag = 80

// DatahoseScopes are the values datahose.scopes accepts (Agent 25.8+).
func DatahoseScopes() []string { return []string{"INTERNAL", "EXTERNAL", "FEDERATED"} }

// DatahoseOptions configures a [Datahose].
type DatahoseOptions struct {
	// Tag (datahose.tag) identifies the feed together with the account and
	// EventTypes. Empty means "datahose-<username>", cut to 80 characters,
	// as the BDKs derive it.
	Tag string
	// EventTypes (datahose.eventTypes) are the event types to receive, at
	// least one, each one of [KnownTypes]. Changing them selects another feed.
	EventTypes []string
	// Scopes (datahose.scopes) narrows the events to INTERNAL, EXTERNAL
	// and/or FEDERATED chats; empty means all.
	Scopes []string
}

// Validate names the offending Go field (callers name their own keys).
func (o DatahoseOptions) Validate() error {
	if n := utf8.RuneCountInString(o.Tag); n > MaxDatahoseTag {
		return fmt.Errorf("DatahoseOptions.Tag: at most %d characters, got %d", MaxDatahoseTag, n)
	}
	if len(o.EventTypes) == 0 {
		return fmt.Errorf("DatahoseOptions.EventTypes: at least one event type is required (one of %s)", strings.Join(KnownTypes(), ", "))
	}
	for i, t := range o.EventTypes {
		if !IsKnownType(t) {
			return fmt.Errorf("DatahoseOptions.EventTypes[%d]: %q is not one of %s", i, t, strings.Join(KnownTypes(), ", "))
		}
	}
	for i, s := range o.Scopes {
		if !slices.Contains(DatahoseScopes(), s) {
			return fmt.Errorf("DatahoseOptions.Scopes[%d]: %q is not one of %s", i, s, strings.Join(DatahoseScopes(), ", "))
		}
	}
	return nil
}

// DefaultDatahoseTag is the BDK's derived tag: "datahose-" + username, at
// most 80 characters.
func DefaultDatahoseTag(username string) string {
	if username == "" {
		return "datahose" // nothing to derive from (a configuration without bot.username)
	}
	tag := "datahose-" + username
	if utf8.RuneCountInString(tag) > MaxDatahoseTag {
		tag = string([]rune(tag)[:MaxDatahoseTag])
	}
	return tag
}

// Datahose reads a datahose feed (POST /agent/v5/events/read). There is no
// create call: the Agent creates the feed on the first read and keys it by
// (account, tag, event types). Several readers with the same key share the
// feed's events. Read must not be called concurrently.
type Datahose struct {
	c          *Client
	tag        string
	eventTypes []string
	scopes     []string
}

// NewDatahose validates opts and prepares a datahose reader.
func NewDatahose(c *Client, opts DatahoseOptions) (*Datahose, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	tag := opts.Tag
	if tag == "" {
		tag = DefaultDatahoseTag(c.username)
	}
	return &Datahose{c: c, tag: tag, eventTypes: slices.Clone(opts.EventTypes), scopes: slices.Clone(opts.Scopes)}, nil
}

// Name identifies the feed in logs, e.g. "datahose datahose-bot".
func (d *Datahose) Name() string { return "datahose " + d.tag }

// Tag is the tag in use (the configured or the derived one).
func (d *Datahose) Tag() string { return d.tag }

// Read long-polls the datahose sending ackID, which acknowledges the batch
// that came with it ("" on the first read). The batch's FeedID is the tag:
// a datahose feed's id is not visible to its reader.
//
// A 400 may be a refused ackId: Read then reads once more with ackId "" (the
// unacked batch comes back after the visibility timeout). If that answers
// 400 too, the *APIError is returned ([ClassSlowRetry]); the caller reports
// itself unready after several in a row.
func (d *Datahose) Read(ctx context.Context, ackID string) (Batch, error) {
	b, err := d.read(ctx, ackID)
	if isStatus(err, http.StatusBadRequest) {
		b, err = d.read(ctx, "")
	}
	return b, err
}

func (d *Datahose) read(ctx context.Context, ackID string) (Batch, error) {
	op := "read datahose " + d.tag
	body := struct {
		Type           string   `json:"type"`
		Tag            string   `json:"tag"`
		EventTypes     []string `json:"eventTypes"`
		Scopes         []string `json:"scopes,omitempty"`
		AckID          string   `json:"ackId"`
		UpdatePresence bool     `json:"updatePresence"`
	}{"datahose", d.tag, d.eventTypes, d.scopes, ackID, true}
	resp, err := d.c.do(ctx, request{op: op, method: http.MethodPost, url: d.c.agent + "/agent/v5/events/read", body: body, authed: true})
	if err != nil {
		return Batch{}, err
	}
	b, err := decodeBatch(op, resp, false)
	if err != nil {
		return Batch{}, err
	}
	b.FeedID = d.tag
	return b, nil
}
