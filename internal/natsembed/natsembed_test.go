package natsembed

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartServesJetStream(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
}

func TestValidateNamesField(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "127.0.0.1:0"}, "Config.Dir"},
		{Config{Dir: "x", Listen: "nope"}, "Config.Listen"},
		{Config{Dir: "x", Listen: "127.0.0.1:99999"}, "Config.Listen"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want error naming %s", c.cfg, err, c.want)
		}
	}
}

func TestClientURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:4222": "nats://127.0.0.1:4222",
		":4222":          "nats://127.0.0.1:4222",
		"0.0.0.0:4333":   "nats://127.0.0.1:4333",
		"[::]:4222":      "nats://127.0.0.1:4222",
		"[::1]:4222":     "nats://[::1]:4222",
		"nats.local:1":   "nats://nats.local:1",
	} {
		if got, err := ClientURL(listen); err != nil || got != want {
			t.Errorf("ClientURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1:0", "4222", ""} {
		if got, err := ClientURL(bad); err == nil {
			t.Errorf("ClientURL(%q) = %q, want an error", bad, got)
		}
	}
}
