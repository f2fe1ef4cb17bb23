package bridge_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/symbridge/symbridge/internal/natstest"
	"github.com/symbridge/symbridge/pkg/bridge"
)

// TestConnect_Refused: a server that refuses the client for a reason
// waiting cannot mend (credentials, certificates) makes Connect return
// promptly with that reason, instead of waiting for ctx as it does for a
// server that is down; a good configuration still connects.
func TestConnect_Refused(t *testing.T) {
	t.Parallel()
	p := natstest.NewPKI(t)
	tlsSrv := natstest.RunServer(t, natstest.WithTLS(p, false))
	mtlsSrv := natstest.RunServer(t, natstest.WithTLS(p, true))
	passSrv := natstest.RunServer(t, natstest.WithUserPassword("bob", "right-password"))
	fast := nats.ReconnectWait(50 * time.Millisecond)
	for _, tc := range []struct {
		name string
		srv  *natstest.Server
		opts []nats.Option
		want string // regexp; "" = connects
	}{
		{"TLS, CA given", tlsSrv, []nats.Option{nats.RootCAs(p.CAFile)}, ""},
		{"TLS, unknown CA", tlsSrv, nil, `certificate signed by unknown authority`},
		{"mutual TLS, client certificate given", mtlsSrv,
			[]nats.Option{nats.RootCAs(p.CAFile), nats.ClientCert(p.ClientCertFile, p.ClientKeyFile)}, ""},
		{"mutual TLS, no client certificate", mtlsSrv, []nats.Option{nats.RootCAs(p.CAFile)},
			`certificate required|client certificate|bad certificate`},
		{"wrong password", passSrv, []nats.Option{nats.UserInfo("bob", "wrong-password")}, `(?i)authorization violation`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			nc, err := bridge.Connect(ctx, bridge.NATSConfig{URL: tc.srv.URL(), Options: append(tc.opts, fast)}, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("Connect succeeded")
			}
			if ctx.Err() != nil {
				t.Fatalf("Connect waited for ctx: %v", err)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("Connect = %q, want the reason (%s)", err, tc.want)
			}
			if strings.Contains(err.Error(), "password") {
				t.Errorf("error names the password: %v", err)
			}
		})
	}
}
