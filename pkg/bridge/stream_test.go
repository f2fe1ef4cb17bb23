package bridge_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/internal/testlog"
	"github.com/symbridge/symbridge/pkg/bridge"
)

func TestEnsureStream(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv)
	ctx := t.Context()
	must := []string{"symphony.acme.*.*", "symphony.acme._invalid"}

	t.Run("creates when missing", func(t *testing.T) {
		s, err := bridge.EnsureStream(ctx, js, bridge.StreamConfig{Name: "NEW", Subjects: []string{"new.>"}, MaxAge: time.Hour, MaxMsgSize: -1},
			[]string{"new.acme.*"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		if c.Storage != jetstream.FileStorage || c.Duplicates != 35*time.Minute || c.Replicas != 1 ||
			c.MaxAge != time.Hour || c.MaxMsgSize != -1 || len(c.Subjects) != 1 || c.Subjects[0] != "new.>" {
			t.Errorf("created %+v", c)
		}
	})

	t.Run("verifies an existing stream without changing it", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"symphony.>"},
			Duplicates: 40 * time.Minute, MaxAge: 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		var logs testlog.Buffer
		s, err := bridge.EnsureStream(ctx, js, bridge.StreamConfig{Name: "OLD", MaxAge: 2 * time.Hour}, must,
			slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if c := s.CachedInfo().Config; c.MaxAge != 24*time.Hour || c.Duplicates != 40*time.Minute {
			t.Errorf("existing stream changed: %+v", c)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("unexpected warning: %s", logs.String())
		}
	})

	t.Run("fails when the subjects are not covered", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NARROW", Subjects: []string{"other.>", "narrow.acme.x.*"}}); err != nil {
			t.Fatal(err)
		}
		_, err := bridge.EnsureStream(ctx, js, bridge.StreamConfig{Name: "NARROW"}, []string{"narrow.acme.*.*", "other.x"}, nil)
		if !errors.Is(err, bridge.ErrStreamCoverage) || !strings.Contains(err.Error(), "[narrow.acme.*.*]") {
			t.Fatalf("EnsureStream = %v, want ErrStreamCoverage naming the filter", err)
		}
		// The same check before creating.
		_, err = bridge.EnsureStream(ctx, js, bridge.StreamConfig{Name: "NEVER", Subjects: []string{"nope.>"}}, must, nil)
		if !errors.Is(err, bridge.ErrStreamCoverage) {
			t.Fatalf("EnsureStream = %v, want ErrStreamCoverage", err)
		}
		if _, err := js.Stream(ctx, "NEVER"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream NEVER was created: %v", err)
		}
	})

	t.Run("warns on a short duplicate window", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHORT", Subjects: []string{"short.>"}}); err != nil {
			t.Fatal(err)
		}
		var logs testlog.Buffer
		if _, err := bridge.EnsureStream(ctx, js, bridge.StreamConfig{Name: "SHORT", Subjects: []string{"short.>"}},
			[]string{"short.acme.>"}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		out := logs.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "duplicates=2m0s") {
			t.Errorf("no duplicate-window warning in %q", out)
		}
	})

	t.Run("validates its configuration", func(t *testing.T) {
		for _, sc := range []bridge.StreamConfig{
			{Name: ""},
			{Name: "a.b"},
			{Name: "X", Duplicates: time.Hour, MaxAge: time.Minute},
			{Name: "X", Replicas: 7},
			{Name: "X", Subjects: []string{"a..b"}},
			{Name: "X", MaxMsgSize: -2},
		} {
			var fe *bridge.FieldError
			if _, err := bridge.EnsureStream(ctx, js, sc, nil, nil); !errors.As(err, &fe) {
				t.Errorf("EnsureStream(%+v) = %v, want an error naming the field", sc, err)
			}
		}
	})
}

// TestInspectStream: InspectStream reports by EnsureStream's rules and
// changes nothing: a missing stream stays missing.
func TestInspectStream(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv)
	ctx := t.Context()
	must := []string{"symphony.*.*.*", "symphony.*._invalid"}

	r, err := bridge.InspectStream(ctx, js, bridge.StreamConfig{Name: "MISSING", MaxAge: 20 * time.Minute}, must)
	if err != nil {
		t.Fatal(err)
	}
	if r.Exists || len(r.Uncovered) != 0 || r.Duplicates != 20*time.Minute || r.Replicas != 1 ||
		!slices.Equal(r.Subjects, []string{bridge.DefaultStreamSubject}) || !r.ShortDuplicates() {
		t.Errorf("missing stream: %+v; want the defaults EnsureStream would create it with (duplicates capped by the age: short)", r)
	}
	if _, err := js.Stream(ctx, "MISSING"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("InspectStream created the stream: %v", err)
	}
	r, err = bridge.InspectStream(ctx, js, bridge.StreamConfig{Name: "MISSING", Subjects: []string{"nope.>"}}, must)
	if err != nil || !slices.Equal(r.Uncovered, must) {
		t.Errorf("missing stream with other subjects: %+v, %v; want both filters uncovered", r, err)
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"symphony.*.*.*"},
		Duplicates: 10 * time.Minute, MaxAge: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	r, err = bridge.InspectStream(ctx, js, bridge.StreamConfig{Name: "OLD", Replicas: 1}, must)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Exists || !slices.Equal(r.Uncovered, must[1:]) || r.Duplicates != 10*time.Minute || !r.ShortDuplicates() || !r.DiffersFromConfig() {
		t.Errorf("existing stream: %+v; want it found, the dead letters uncovered, a short window and settings that differ", r)
	}
	if _, err := bridge.InspectStream(ctx, js, bridge.StreamConfig{Name: "a.b"}, must); err == nil {
		t.Error("InspectStream accepted an invalid name")
	}
}

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		pattern, filter string
		want            bool
	}{
		{"symphony.>", "symphony.acme.*.*", true},
		{"symphony.>", "symphony.acme._invalid", true},
		{"symphony.>", "symphony.>", true},
		{"symphony.>", "symphony", false},
		{"symphony.*.*.*", "symphony.acme.*.*", true},
		{"symphony.*.*.*", "symphony.acme.>", false},
		{"symphony.acme.*.*", "symphony.*.x.y", false},
		{"symphony.acme.x", "symphony.acme.x", true},
		{"symphony.acme.x", "symphony.acme.y", false},
		{"symphony.acme", "symphony.acme.x", false},
		{"symphony.acme.x.y", "symphony.acme.x", false},
		{">", "anything.at.all", true},
		{"*", "one", true},
		{"*", ">", false},
		{"a.>", "a.*.>", true},
		{"a.*.>", "a.>", false},
	}
	for _, tt := range tests {
		if got := bridge.SubjectCovers(tt.pattern, tt.filter); got != tt.want {
			t.Errorf("SubjectCovers(%q, %q) = %v, want %v", tt.pattern, tt.filter, got, tt.want)
		}
	}
}

func TestConnect(t *testing.T) {
	t.Run("waits for a server that starts later", func(t *testing.T) {
		srv := natstest.RunServer(t)
		srv.Shutdown()
		type result struct {
			nc  *nats.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			nc, err := bridge.Connect(t.Context(), bridge.NATSConfig{URL: srv.URL(),
				Options: []nats.Option{nats.ReconnectWait(20 * time.Millisecond)}}, nil)
			ch <- result{nc, err}
		}()
		natstest.RestartServer(t, srv)
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.nc.Close()
			if r.nc.Status() != nats.CONNECTED {
				t.Errorf("status %s", r.nc.Status())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Connect did not return after the server started")
		}
	})

	t.Run("gives up when ctx ends, without leaking the password", func(t *testing.T) {
		srv := natstest.RunServer(t)
		srv.Shutdown()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		url := strings.Replace(srv.URL(), "nats://", "nats://bob:s3cret@", 1)
		_, err := bridge.Connect(ctx, bridge.NATSConfig{URL: url}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect = %v, want DeadlineExceeded", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks the password: %v", err)
		}
	})
}
