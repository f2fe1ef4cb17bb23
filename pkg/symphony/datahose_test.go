package symphony_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/symbridge/symbridge/pkg/symphony"
)

func TestDatahoseOptions_Validate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  symphony.DatahoseOptions
		field string
	}{
		{"valid", symphony.DatahoseOptions{EventTypes: []string{"MESSAGESENT", "ROOMCREATED"}, Scopes: []string{"INTERNAL", "FEDERATED"}}, ""},
		{"valid 80-character tag", symphony.DatahoseOptions{Tag: strings.Repeat("é", 80), EventTypes: []string{"GENERICSYSTEMEVENT"}}, ""},
		{"no event types", symphony.DatahoseOptions{}, "DatahoseOptions.EventTypes"},
		{"unknown event type", symphony.DatahoseOptions{EventTypes: []string{"MESSAGESENT", "MESSAGE_SENT"}}, "DatahoseOptions.EventTypes[1]"},
		{"lower-case event type", symphony.DatahoseOptions{EventTypes: []string{"messagesent"}}, "DatahoseOptions.EventTypes[0]"},
		{"tag too long", symphony.DatahoseOptions{Tag: strings.Repeat("t", 81), EventTypes: []string{"MESSAGESENT"}}, "DatahoseOptions.Tag"},
		{"bad scope", symphony.DatahoseOptions{EventTypes: []string{"MESSAGESENT"}, Scopes: []string{"INTERNAL", "PUBLIC"}}, "DatahoseOptions.Scopes[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate() = %v", err)
			case tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.field+":")):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.field)
			}
			s := newStub(t)
			_, err = symphony.NewDatahose(s.client(), tc.opts)
			if (err == nil) != (tc.field == "") {
				t.Errorf("NewDatahose() = %v, Validate() disagrees", err)
			}
		})
	}
}

func TestDefaultDatahoseTag(t *testing.T) {
	if got := symphony.DefaultDatahoseTag("bot"); got != "datahose-bot" {
		t.Errorf("DefaultDatahoseTag(bot) = %q", got)
	}
	if got := symphony.DefaultDatahoseTag(""); got != "datahose" {
		t.Errorf("DefaultDatahoseTag(\"\") = %q", got)
	}
	long := strings.Repeat("ü", 100)
	got := symphony.DefaultDatahoseTag(long)
	if utf8.RuneCountInString(got) != 80 || !utf8.ValidString(got) || !strings.HasPrefix(got, "datahose-üü") {
		t.Errorf("DefaultDatahoseTag(100 runes) = %q (%d runes)", got, utf8.RuneCountInString(got))
	}
}

// hoseStub records datahose reads and answers with read.
type hoseStub struct {
	mu     sync.Mutex
	bodies []map[string]any
	read   func(ackID string) (int, string)
}

func newHoseStub(t *testing.T, s *stubSymphony) *hoseStub {
	h := &hoseStub{}
	s.Mux.HandleFunc("POST /agent/v5/events/read", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		var body map[string]any
		readJSON(t, r, &body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.bodies = append(h.bodies, body)
		ack, _ := body["ackId"].(string)
		st, b := 200, eventList("hose-ack", oneEvent)
		if h.read != nil {
			st, b = h.read(ack)
		}
		writeRaw(w, st, b)
	})
	return h
}

func (h *hoseStub) sent() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.bodies...)
}

func TestDatahose_Read(t *testing.T) {
	s := newStub(t)
	h := newHoseStub(t, s)
	d, err := symphony.NewDatahose(s.client(), symphony.DatahoseOptions{EventTypes: []string{"MESSAGESENT", "ROOMCREATED"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Tag() != "datahose-"+stubUser || d.Name() != "datahose datahose-"+stubUser {
		t.Errorf("Tag() = %q, Name() = %q", d.Tag(), d.Name())
	}
	b, err := d.Read(context.Background(), "prev")
	if err != nil {
		t.Fatal(err)
	}
	if b.AckID != "hose-ack" || len(b.Events) != 1 || b.FeedID != d.Tag() {
		t.Errorf("batch = %+v", b)
	}
	want := map[string]any{
		"type": "datahose", "tag": "datahose-" + stubUser, "eventTypes": []any{"MESSAGESENT", "ROOMCREATED"},
		"ackId": "prev", "updatePresence": true,
	}
	if got := h.sent(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("request body = %v, want %v (no scopes key when none are set)", got, want)
	}

	d2, err := symphony.NewDatahose(s.client(), symphony.DatahoseOptions{Tag: "mine", EventTypes: []string{"USERJOINEDROOM"}, Scopes: []string{"EXTERNAL"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Read(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	got := h.sent()[1]
	if got["tag"] != "mine" || !reflect.DeepEqual(got["scopes"], []any{"EXTERNAL"}) || got["ackId"] != "" {
		t.Errorf("request body = %v", got)
	}
}

func TestDatahose_400(t *testing.T) {
	s := newStub(t)
	h := newHoseStub(t, s)
	d, err := symphony.NewDatahose(s.client(), symphony.DatahoseOptions{EventTypes: []string{"MESSAGESENT"}})
	if err != nil {
		t.Fatal(err)
	}
	acks := func() []string {
		var out []string
		for _, b := range h.sent() {
			out = append(out, b["ackId"].(string))
		}
		return out
	}

	// A refused ackId: read again with "".
	h.mu.Lock()
	h.read = func(ack string) (int, string) {
		if ack == "stale" {
			return 400, `{"code":400,"message":"invalid ackId"}`
		}
		return 200, eventList("ok", oneEvent)
	}
	h.mu.Unlock()
	b, err := d.Read(context.Background(), "stale")
	if err != nil || b.AckID != "ok" {
		t.Fatalf("Read = %+v, %v", b, err)
	}
	if got := acks(); !reflect.DeepEqual(got, []string{"stale", ""}) {
		t.Errorf("ackIds sent = %q, want stale then \"\"", got)
	}

	// 400 again: the *APIError comes back, slow retry, naming the feed.
	h.mu.Lock()
	h.read = func(string) (int, string) { return 400, `{"code":400,"message":"no entitlement"}` }
	h.mu.Unlock()
	_, err = d.Read(context.Background(), "x")
	var apiErr *symphony.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Message != "no entitlement" {
		t.Fatalf("err = %v, want the 400 *APIError", err)
	}
	if symphony.Classify(err) != symphony.ClassSlowRetry || !strings.Contains(err.Error(), "datahose-"+stubUser) {
		t.Errorf("err = %v (class %s)", err, symphony.Classify(err))
	}
	if got := acks(); !reflect.DeepEqual(got[2:], []string{"x", ""}) {
		t.Errorf("ackIds sent = %q, want x then \"\" (one retry only)", got[2:])
	}
}
