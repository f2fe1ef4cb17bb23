package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                       now.Add(-10 * time.Minute),
		"1h30m":                     now.Add(-90 * time.Minute),
		"2026-12-03T09:00:00Z":      time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC),
		"2026-12-03T09:00:00+01:00": time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5m", "2026-12-03"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

func TestDescribe(t *testing.T) {
	h := nats.Header{}
	h.Set(hdrEventType, "MESSAGESENT")
	h.Set(hdrStreamType, "ROOM")
	msg := `{"initiator":{"user":{"userId":42,"displayName":"Ann"}},"payload":{"messageSent":{"message":{"message":` +
		`"<div data-format=\"PresentationML\" data-version=\"2.0\"><p>Q3 &amp; <b>Q4</b>\n numbers</p></div>"}}}}`
	if got, want := describe(7, h, []byte(msg)), `7 MESSAGESENT ROOM initiator=Ann text="Q3 & Q4 numbers"`; got != want {
		t.Errorf("describe = %s\nwant       %s", got, want)
	}
	if got, want := describe(8, nats.Header{}, []byte(`{"initiator":{"user":{"userId":42}}}`)), "8 - - initiator=42"; got != want {
		t.Errorf("describe = %s, want %s", got, want)
	}
	dl := nats.Header{}
	dl.Set(hdrDeadLetter, "no type")
	if got, want := describe(9, dl, []byte("not json")), "9 - - dead-letter: no type"; got != want {
		t.Errorf("describe = %s, want %s", got, want)
	}
	if got := describe(10, nats.Header{}, []byte("[1,2")); got != "10 - - (payload is not a JSON event)" {
		t.Errorf("describe of a broken payload = %s", got)
	}
}

func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{
		{"--since", "10m", "--seq", "3"},
		{"--follow"},
		{"--batch", "0"},
		{"--ack-wait", "10ms"},
		{"--since", "soon"},
		{"extra"},
		{"--no-such-flag"},
	} {
		stderr.Reset()
		if code := run(args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("run %v = %d, want 2 (bad usage)", args, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("run %v: no message on stderr", args)
		}
	}
	if code := run([]string{"--help"}, &bytes.Buffer{}, &stderr); code != 0 {
		t.Errorf("run --help = %d, want 0", code)
	}
}
