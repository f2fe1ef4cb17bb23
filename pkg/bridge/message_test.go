package bridge

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/symphony"
)

func TestBuildMsgEncodesUnsafeValues(t *testing.T) {
	ev := symphony.ParseEvent([]byte(`{"id":"a\r\nb","type":"X Y%\"é\n","timestamp":0,"payload":{}}`))
	if ev.Err != nil {
		t.Fatal(ev.Err)
	}
	m := BuildMsg(&ev, "s.x", "po d", "datafeed")
	tests := map[string]string{
		HeaderEventID:   "a%0D%0Ab",
		HeaderEventType: "X Y%\"é%0A",
		HeaderPod:       "po d",
		HeaderCEType:    "com.symphony.event.x%20y%25%22%C3%A9%0A",
		HeaderCESource:  "symphony://po%2520d",
	}
	for k, want := range tests {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, ok := m.Header[HeaderCETime]; ok {
		t.Error("ce-time set for an event without timestamp")
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			if strings.ContainsAny(k+v, "\r\n") {
				t.Errorf("header %s: %q holds CR or LF", k, v)
			}
		}
	}
}

func TestIsPermanent(t *testing.T) {
	api := func(code jetstream.ErrorCode) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: 400, ErrorCode: code})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"max payload", nats.ErrMaxPayload, true},
		{"bad subject", fmt.Errorf("publish: %w", nats.ErrBadSubject), true},
		{"10054 too big for the stream", api(jetstream.JSErrCodeStreamMessageExceedsMaximum), true},
		{"10060 wrong stream", api(10060), true},
		{"10077 storage full", api(10077), false},
		{"10023 insufficient resources", api(10023), false},
		{"503 jetstream not enabled", jetstream.ErrJetStreamNotEnabled, false},
		{"no responders", jetstream.ErrNoStreamResponse, false},
		{"ack timeout", jetstream.ErrAsyncPublishTimeout, false},
		{"ack lost", errAckLost, false},
		{"stalled", jetstream.ErrTooManyStalledMsgs, false},
		{"disconnected", nats.ErrDisconnected, false},
		{"reconnect buffer", nats.ErrReconnectBufExceeded, false},
		{"closed", nats.ErrConnectionClosed, false},
		{"timeout", nats.ErrTimeout, false},
		{"deadline", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		if got := isPermanent(tt.err); got != tt.want {
			t.Errorf("%s: isPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
}
