//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// natsNode is one containerised nats-server, published on fixed host ports
// of 127.0.0.1 so that it comes back on the same ports after a restart.
type natsNode struct {
	name        string // server_name, and its alias on the cluster network
	ctr         testcontainers.Container
	id          string
	clientPort  int
	monitorPort int
	network     string // the cluster network's id ("" for a lone server)
}

type nodeSpec struct {
	name   string
	config string            // nats-server configuration
	files  map[string][]byte // extra files by path (certificates), world-readable
	volume string            // named volume for /data ("" = the image's anonymous volume)
	net    *testcontainers.DockerNetwork
	// Host ports; 0 = a free one. A replacement container reuses its
	// predecessor's.
	clientPort, monitorPort int
}

const natsConfigPath = "/etc/nats/it.conf"

// startNATS starts a nats-server container from natsImage and waits until it
// is ready. Its container (and named volume) is removed when the test ends;
// when the test failed, the end of its log is printed first.
func startNATS(t *testing.T, spec nodeSpec) *natsNode {
	t.Helper()
	return startNATSAll(t, []nodeSpec{spec})[0]
}

// startNATSAll starts the servers concurrently (cluster members must come up
// together to elect their leaders) and waits until each is ready.
func startNATSAll(t *testing.T, specs []nodeSpec) []*natsNode {
	t.Helper()
	image := natsImage(t)
	ports := freePorts(t, 2*len(specs))
	nodes := make([]*natsNode, len(specs))
	errs := make(chan error, len(specs))
	for i, spec := range specs {
		n := &natsNode{name: spec.name, clientPort: spec.clientPort, monitorPort: spec.monitorPort}
		if n.clientPort == 0 {
			n.clientPort = ports[2*i]
		}
		if n.monitorPort == 0 {
			n.monitorPort = ports[2*i+1]
		}
		if spec.net != nil {
			n.network = spec.net.ID
		}
		nodes[i] = n
		opts := []testcontainers.ContainerCustomizer{
			testcontainers.WithName("symbridge-it-" + spec.name + "-" + uniqueSuffix()),
			testcontainers.WithCmd("--config", natsConfigPath),
			testcontainers.WithFiles(containerFiles(spec)...),
			testcontainers.WithExposedPorts("4222/tcp", "8222/tcp"),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{
					network.MustParsePort("4222/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(n.clientPort)}},
					network.MustParsePort("8222/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(n.monitorPort)}},
				}
			}),
			testcontainers.WithWaitStrategyAndDeadline(90*time.Second, wait.ForLog("Server is ready")),
			testcontainers.WithLogger(tclog.TestLogger(t)),
		}
		if spec.volume != "" {
			opts = append(opts, testcontainers.WithMounts(testcontainers.VolumeMount(spec.volume, "/data")))
		}
		if spec.net != nil {
			opts = append(opts, tcnetwork.WithNetwork([]string{spec.name}, spec.net))
		}
		go func() {
			ctr, err := testcontainers.Run(context.Background(), image, opts...)
			n.ctr = ctr
			if ctr != nil {
				n.id = ctr.GetContainerID()
			}
			if err != nil {
				err = fmt.Errorf("start %s: %w", spec.name, err)
			}
			errs <- err
		}()
	}
	var firstErr error
	for range specs {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for i, n := range nodes {
		var rm []testcontainers.TerminateOption
		if specs[i].volume != "" {
			rm = append(rm, testcontainers.RemoveVolumes(specs[i].volume))
		}
		testcontainers.CleanupContainer(t, n.ctr, rm...)
		t.Cleanup(func() {
			if t.Failed() && n.ctr != nil {
				dumpLogs(t, n)
			}
		})
	}
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return nodes
}

// containerFiles are the configuration and spec.files, read afresh by every
// container made from spec (a replacement reuses it).
func containerFiles(spec nodeSpec) []testcontainers.ContainerFile {
	files := []testcontainers.ContainerFile{{
		Reader: strings.NewReader(spec.config), ContainerFilePath: natsConfigPath, FileMode: 0o644,
	}}
	for path, data := range spec.files {
		files = append(files, testcontainers.ContainerFile{Reader: bytes.NewReader(data), ContainerFilePath: path, FileMode: 0o644})
	}
	return files
}

// dumpLogs prints the end of a node's log.
func dumpLogs(t *testing.T, n *natsNode) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := n.ctr.Logs(ctx)
	if err != nil {
		t.Logf("%s: logs: %v", n.name, err)
		return
	}
	defer rc.Close()
	var lines []string
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 60 {
			lines = lines[1:]
		}
	}
	t.Logf("--- last log lines of %s ---\n%s", n.name, strings.Join(lines, "\n"))
}

func (n *natsNode) url(scheme string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, n.clientPort)
}

var healthClient = &http.Client{Timeout: 2 * time.Second}

// healthz asks the server's monitoring endpoint whether it is healthy: up,
// JetStream enabled, and (in a cluster) current with its meta and stream
// groups.
func (n *natsNode) healthz(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitorPort), nil)
	if err != nil {
		return err
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /healthz %d: %s", n.name, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// waitHealthy waits until every node reports healthy.
func waitHealthy(t *testing.T, timeout time.Duration, nodes ...*natsNode) {
	t.Helper()
	err := poll(t.Context(), timeout, 100*time.Millisecond, func() error {
		for _, n := range nodes {
			if err := n.healthz(t.Context()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("servers not healthy: %v", err)
	}
}

// --- faults -------------------------------------------------------------------

// Faults act on the container through the Docker engine directly (not
// through testcontainers' lifecycle, whose readiness wait would match the
// log of the previous run).

func (n *natsNode) kill(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	if _, err := cli.ContainerKill(t.Context(), n.id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("kill %s: %v", n.name, err)
	}
	n.waitState(t, cli, func(s *container.State) bool { return !s.Running })
}

func (n *natsNode) stop(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	timeout := 20
	if _, err := cli.ContainerStop(t.Context(), n.id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop %s: %v", n.name, err)
	}
}

func (n *natsNode) start(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	if _, err := cli.ContainerStart(t.Context(), n.id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
}

func (n *natsNode) pause(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	if _, err := cli.ContainerPause(t.Context(), n.id, client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("pause %s: %v", n.name, err)
	}
}

func (n *natsNode) unpause(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	if _, err := cli.ContainerUnpause(t.Context(), n.id, client.ContainerUnpauseOptions{}); err != nil {
		t.Fatalf("unpause %s: %v", n.name, err)
	}
}

// disconnect cuts the node off its network: routes to its peers and the
// published ports both go through it.
func (n *natsNode) disconnect(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	if _, err := cli.NetworkDisconnect(t.Context(), n.network, client.NetworkDisconnectOptions{Container: n.id, Force: true}); err != nil {
		t.Fatalf("disconnect %s: %v", n.name, err)
	}
}

func (n *natsNode) connect(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	if _, err := cli.NetworkConnect(t.Context(), n.network, client.NetworkConnectOptions{
		Container: n.id, EndpointConfig: &network.EndpointSettings{Aliases: []string{n.name}},
	}); err != nil {
		t.Fatalf("reconnect %s: %v", n.name, err)
	}
}

func (n *natsNode) waitState(t *testing.T, cli *testcontainers.DockerClient, ok func(*container.State) bool) {
	t.Helper()
	err := poll(t.Context(), 30*time.Second, 50*time.Millisecond, func() error {
		res, err := cli.ContainerInspect(t.Context(), n.id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if res.Container.State == nil || !ok(res.Container.State) {
			return fmt.Errorf("%s: not in the expected state yet", n.name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
