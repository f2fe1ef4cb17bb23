//go:build integration

package integration

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// singleConfig is a lone JetStream server that demands a user and password
// and speaks TLS only, with its store on /data (a named volume).
func singleConfig(password string) string {
	return fmt.Sprintf(`server_name: single
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
jetstream {
  store_dir: /data
  max_memory_store: 64MB
  max_file_store: 1GB
}
authorization {
  users: [ { user: bridge, password: %q } ]
}
tls {
  cert_file: /etc/nats/tls/server.pem
  key_file: /etc/nats/tls/server-key.pem
  timeout: 5
}
`, password)
}

// TestSingleNode runs the bridge against one containerised JetStream server
// with user/password authentication and TLS, and restarts the server in the
// middle of the stream twice: a graceful stop and start of the container,
// then a crash (SIGKILL) after which the container is replaced by a new one
// on the same volume, so only the volume carries the store. Nothing may be
// lost, nothing stored twice.
func TestSingleNode(t *testing.T) {
	cli := requireDocker(t)
	pki := newTestPKI(t, "nats")
	pw := make([]byte, 16)
	rand.Read(pw)
	password := hex.EncodeToString(pw)

	volume := "symbridge-it-single-" + uniqueSuffix()
	spec := nodeSpec{
		name:   "single",
		config: singleConfig(password),
		volume: volume,
		// World-readable because the server runs as nobody; a throwaway key.
		files: map[string][]byte{
			"/etc/nats/tls/server.pem":     pki.ServerCert,
			"/etc/nats/tls/server-key.pem": pki.ServerKey,
		},
	}
	node := startNATS(t, spec)
	waitHealthy(t, 30*time.Second, node)
	url := node.url("tls")

	t.Run("auth-and-tls-enforced", func(t *testing.T) {
		// Without credentials: refused.
		if nc, err := nats.Connect(url, nats.RootCAs(pki.CAFile), nats.NoReconnect(), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Error("connected without credentials")
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("without credentials: want an authorization error, got %v", err)
		}
		// Without our CA: the server's certificate is not trusted.
		if nc, err := nats.Connect(url, nats.UserInfo("bridge", password), nats.NoReconnect(), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Error("connected without trusting the test CA")
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("without the CA: want a certificate error, got %v", err)
		}
		// The server requires TLS: its greeting says so before anything else.
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", node.clientPort), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		info, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatalf("reading the server's INFO: %v", err)
		}
		if !strings.Contains(info, `"tls_required":true`) {
			t.Errorf("the server does not require TLS: %s", info)
		}
	})

	env := &natsEnv{
		urls:     url,
		opts:     []nats.Option{nats.UserInfo("bridge", password), nats.RootCAs(pki.CAFile)},
		replicas: 1,
		nodes:    []*natsNode{node},
	}

	t.Run("restart", func(t *testing.T) {
		runScenario(t, env, scenario{
			name: "restart/single-tls-auth",
			pod:  "restart",
			inject: func(t *testing.T, r *bridgeRun) (string, func()) {
				node.stop(t, cli)
				return "single (docker stop; start)", func() { node.start(t, cli) }
			},
			healthy: func(t *testing.T) { waitHealthy(t, 60*time.Second, node) },
		})
	})

	t.Run("crash-replace", func(t *testing.T) {
		runScenario(t, env, scenario{
			name: "crash-replace/single-tls-auth",
			pod:  "replace",
			inject: func(t *testing.T, r *bridgeRun) (string, func()) {
				node.kill(t, cli)
				if err := node.ctr.Terminate(t.Context()); err != nil { // keeps the named volume
					t.Fatalf("remove the crashed container: %v", err)
				}
				return "single (SIGKILL; new container on the same volume)", func() {
					again := spec
					again.clientPort, again.monitorPort = node.clientPort, node.monitorPort
					n := startNATS(t, again)
					*node = *n
				}
			},
			healthy: func(t *testing.T) { waitHealthy(t, 60*time.Second, node) },
		})
	})
}
