package redact

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecret(t *testing.T) {
	s := Secret("hunter2")
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", s)
	js, _ := json.Marshal(struct{ S Secret }{s})
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s), logged.String(), string(js)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, Redacted) {
			t.Errorf("printed %q", out)
		}
	}
	if s.Reveal() != "hunter2" || Secret("").String() != "" {
		t.Errorf("Reveal %q, empty %q", s.Reveal(), Secret("").String())
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"nats://a:4222":             "nats://a:4222",
		"http://pu:pw@px:3128":      "http://pu:xxxxx@px:3128",
		"tls://tok@c:1":             "tls://redacted@c:1",
		"127.0.0.1:4222":            "127.0.0.1:4222",
		"u:p@1.2.3.4:1":             Redacted,
		"nats://u:p@a:4222, b:4222": "nats://u:xxxxx@a:4222,b:4222",
	} {
		if got := URLList(in); got != want {
			t.Errorf("URLList(%q) = %q, want %q", in, got, want)
		}
	}
}
