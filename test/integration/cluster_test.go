//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
)

// clusterConfig is one member of a three-node JetStream cluster. The members
// find each other by their aliases on the private network; no_advertise
// keeps those internal addresses out of what clients are told
// (connect_urls), so that the bridge only ever uses the published ports it
// was given.
func clusterConfig(name string, names []string) string {
	routes := make([]string, len(names))
	for i, n := range names {
		routes[i] = fmt.Sprintf("nats://%s:6222", n)
	}
	return fmt.Sprintf(`server_name: %s
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
jetstream {
  store_dir: /data
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: symbridge-it
  listen: 0.0.0.0:6222
  routes: [%s]
  no_advertise: true
}
`, name, strings.Join(routes, ", "))
}

// TestCluster runs the bridge against a three-node JetStream cluster on a
// private Docker network, with an R3 stream, through each fault in turn:
// kill, pause and network disconnection, each hitting the stream leader and
// then the server the bridge is connected to, and finally the loss of the
// quorum. Each scenario has its own stream and bridge, and prints its
// figures.
func TestCluster(t *testing.T) {
	cli := requireDocker(t)
	ctx := t.Context()

	nw, err := tcnetwork.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	names := []string{"n1", "n2", "n3"}
	specs := make([]nodeSpec, len(names))
	for i, name := range names {
		specs[i] = nodeSpec{name: name, config: clusterConfig(name, names), net: nw}
	}
	start := time.Now()
	nodes := startNATSAll(t, specs)
	waitHealthy(t, 90*time.Second, nodes...)
	t.Logf("cluster up and healthy in %s", time.Since(start).Round(100*time.Millisecond))

	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url("nats")
	}
	env := &natsEnv{urls: strings.Join(urls, ","), replicas: 3, nodes: nodes}

	// no_advertise: clients learn no internal Docker address they could not
	// reach from the host.
	nc, err := nats.Connect(env.urls, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d := nc.DiscoveredServers(); len(d) > 0 {
		t.Errorf("the cluster advertises addresses to clients: %v", d)
	}
	nc.Close()
	healthy := func(t *testing.T) { waitHealthy(t, 90*time.Second, nodes...) }

	type fault struct {
		name           string
		inject, repair func(*testing.T, *natsNode)
	}
	faults := []fault{
		{"kill", func(t *testing.T, n *natsNode) { n.kill(t, cli) }, func(t *testing.T, n *natsNode) { n.start(t, cli) }},
		{"pause", func(t *testing.T, n *natsNode) { n.pause(t, cli) }, func(t *testing.T, n *natsNode) { n.unpause(t, cli) }},
		{"disconnect", func(t *testing.T, n *natsNode) { n.disconnect(t, cli) }, func(t *testing.T, n *natsNode) { n.connect(t, cli) }},
	}
	for _, f := range faults {
		for _, role := range []string{"stream-leader", "bridge-server"} {
			name := f.name + "/" + role
			t.Run(name, func(t *testing.T) {
				runScenario(t, env, scenario{
					name:       name,
					pod:        f.name + "-" + strings.Split(role, "-")[0],
					quorumKept: true,
					healthy:    healthy,
					// Leader and bridge on different servers: the fault hits
					// exactly one role.
					prepare: func(t *testing.T, r *bridgeRun) { r.leaderAwayFrom(t) },
					inject: func(t *testing.T, r *bridgeRun) (string, func()) {
						var target string
						if role == "stream-leader" {
							leader, err := r.streamLeader(t.Context())
							if err != nil {
								t.Fatal(err)
							}
							target = leader
						} else {
							target = r.nc.ConnectedServerName()
						}
						n := env.node(t, target)
						f.inject(t, n)
						return fmt.Sprintf("%s (%s)", target, role), func() { f.repair(t, n) }
					},
					verify: func(t *testing.T, r *bridgeRun, target string) {
						name, _, _ := strings.Cut(target, " ")
						if role == "bridge-server" {
							if got := r.nc.ConnectedServerName(); got == name {
								t.Fatalf("the bridge is still connected to %s, the server the fault hit", name)
							}
							return
						}
						var leader string
						if err := poll(t.Context(), 10*time.Second, 100*time.Millisecond, func() error {
							var err error
							leader, err = r.streamLeader(t.Context())
							return err
						}); err != nil {
							t.Fatal(err)
						}
						if leader == name {
							t.Fatalf("%s still leads the stream after the fault", name)
						}
					},
				})
			})
		}
	}

	t.Run("quorum-lost", func(t *testing.T) {
		runScenario(t, env, scenario{
			name:       "kill-two/quorum-lost",
			pod:        "quorum",
			quorumKept: false,
			healthy:    healthy,
			// The two servers the bridge is not connected to: its connection
			// stays up, only the stream loses its quorum.
			inject: func(t *testing.T, r *bridgeRun) (string, func()) {
				connected := r.nc.ConnectedServerName()
				var victims []*natsNode
				var hit []string
				for _, n := range nodes {
					if n.name != connected {
						victims = append(victims, n)
						hit = append(hit, n.name)
					}
				}
				for _, n := range victims {
					n.kill(t, cli)
				}
				return strings.Join(hit, "+") + " (bridge on " + connected + ")", func() {
					for _, n := range victims {
						n.start(t, cli)
					}
				}
			},
		})
	})
}
