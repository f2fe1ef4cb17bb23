//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/symbridge/symbridge/internal/testshared"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Environment variables the suite reads.
const (
	// envRequireDocker=1 turns "no Docker engine" from a skip into a failure
	// (CI sets it, so the suite can never pass by skipping).
	envRequireDocker = "SYMBRIDGE_REQUIRE_DOCKER"
	// envNATSImage names a nats-server image to use instead of building one,
	// e.g. nats:2.12 on a machine that can pull.
	envNATSImage = "SYMBRIDGE_NATS_IMAGE"
	// envRyukDisabled: Ryuk is an image to pull; without a registry it cannot
	// start, so it is disabled unless the user said otherwise.
	envRyukDisabled = "TESTCONTAINERS_RYUK_DISABLED"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if _, set := os.LookupEnv(envRyukDisabled); !set {
		os.Setenv(envRyukDisabled, "true")
	}
	if !testing.Verbose() {
		// testcontainers logs every container step to stderr; each container
		// logs to its test instead (seen with -v or on failure).
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	os.Exit(m.Run())
}

var (
	dockerOnce sync.Once
	dockerCli  *testcontainers.DockerClient
	dockerErr  error
)

// dockerRequired: under CI (CI set) or with SYMBRIDGE_REQUIRE_DOCKER=1 a
// missing Docker engine fails the containerised tests instead of skipping
// them.
func dockerRequired() bool {
	return os.Getenv(envRequireDocker) == "1" || os.Getenv("CI") != ""
}

// requireDocker returns a client of the Docker engine. Without a reachable
// engine it skips the test, or fails it when dockerRequired.
func requireDocker(t *testing.T) *testcontainers.DockerClient {
	t.Helper()
	dockerOnce.Do(func() { dockerCli, dockerErr = connectDocker() })
	if dockerErr != nil {
		if dockerRequired() {
			t.Fatalf("no Docker engine reachable, and CI or %s=1 requires one: %v", envRequireDocker, dockerErr)
		}
		t.Skipf("no Docker engine reachable (%v): these containerised tests need one; "+
			"set %s=1 to make this a failure instead of a skip", dockerErr, envRequireDocker)
	}
	return dockerCli
}

func connectDocker() (cli *testcontainers.DockerClient, err error) {
	defer func() { // testcontainers panics on some broken setups
		if r := recover(); r != nil {
			cli, err = nil, fmt.Errorf("docker client: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err = testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return nil, fmt.Errorf("docker ping: %w", err)
	}
	return cli, nil
}

// --- images -----------------------------------------------------------------

// imageDef is an image built from a prebuilt static binary: there is no
// registry, so no FROM golang stage can run; the binary is built on the host
// and handed to the Dockerfile in the build context.
type imageDef struct {
	repo       string            // image repository; the tag is a content hash
	dockerfile string            // relative to the repository root
	pkg        string            // Go package to build with CGO_ENABLED=0
	binary     string            // the binary's name in the context
	files      map[string]string // context name -> file (relative to the repo root, or absolute)
	dirs       []string          // empty directories in the context
}

var (
	natsImageDef = imageDef{
		repo:       "symbridge-it/nats-server",
		dockerfile: "docker/nats/Dockerfile",
		pkg:        "github.com/nats-io/nats-server/v2",
		binary:     "nats-server",
		files:      map[string]string{"nats.conf": "docker/nats/nats.conf"},
		dirs:       []string{"data"},
	}
	symbridgeImageDef = imageDef{
		repo:       "symbridge-it/symbridge",
		dockerfile: "Dockerfile",
		pkg:        "./cmd/symbridge",
		binary:     "symbridge",
		files:      map[string]string{"ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt"},
	}
)

type builtImage struct {
	once sync.Once
	ref  string
	err  error
}

var (
	natsImg      builtImage
	symbridgeImg builtImage
)

// natsImage returns the nats-server image: $SYMBRIDGE_NATS_IMAGE, or the one
// built (once per test run) from the Go module in go.mod.
func natsImage(t *testing.T) string {
	t.Helper()
	if ref := os.Getenv(envNATSImage); ref != "" {
		return ref
	}
	return natsImg.get(t, natsImageDef)
}

// symbridgeImage returns the symbridge image, built once per test run.
func symbridgeImage(t *testing.T) string {
	t.Helper()
	return symbridgeImg.get(t, symbridgeImageDef)
}

func (b *builtImage) get(t *testing.T, def imageDef) string {
	t.Helper()
	cli := requireDocker(t)
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		var reused bool
		b.ref, reused, b.err = buildImage(ctx, cli, def)
		if b.err == nil {
			what := "built"
			if reused {
				what = "reused"
			}
			fmt.Printf("image %s %s in %s\n", b.ref, what, time.Since(start).Round(100*time.Millisecond))
		}
	})
	if b.err != nil {
		t.Fatalf("image %s: %v", def.repo, b.err)
	}
	return b.ref
}

// buildImage builds def's binary, tars the context (the Dockerfile, the
// binary, def.files, def.dirs), tags it by the context's hash and builds it
// unless an image with that tag exists. It reports whether it reused one.
func buildImage(ctx context.Context, cli *testcontainers.DockerClient, def imageDef) (ref string, reused bool, err error) {
	root, err := testshared.ModuleRoot()
	if err != nil {
		return "", false, err
	}
	dir, err := os.MkdirTemp("", "symbridge-image-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, def.binary)
	// -buildvcs=false: the image's hash must depend on the code only, not on
	// the state of the work tree. No -trimpath: it would miss the build cache
	// that go vet and go test just filled.
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, def.pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("go build %s: %w\n%s", def.pkg, err, out)
	}

	files := map[string]string{"Dockerfile": filepath.Join(root, def.dockerfile), def.binary: bin}
	for name, p := range def.files {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		files[name] = p
	}
	archive, sum, err := tarContext(files, def.dirs)
	if err != nil {
		return "", false, err
	}
	ref = def.repo + ":" + sum[:16]
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, true, nil
	}

	res, err := cli.ImageBuild(ctx, bytes.NewReader(archive), client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{"symbridge.test": "integration"},
	})
	if err != nil {
		return "", false, fmt.Errorf("docker build %s: %w", ref, err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return "", false, fmt.Errorf("docker build %s: %w", ref, err)
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", false, fmt.Errorf("docker build %s: image missing after the build: %w", ref, err)
	}
	return ref, false, nil
}

// tarContext makes a build context holding files (name -> path) and empty
// dirs, and returns it with the SHA-256 of its names, modes and contents.
func tarContext(files map[string]string, dirs []string) ([]byte, string, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	h := sha256.New()
	for _, d := range dirs {
		fmt.Fprintf(h, "dir %s\n", d)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			return nil, "", err
		}
	}
	for _, n := range names {
		b, err := os.ReadFile(files[n])
		if err != nil {
			return nil, "", fmt.Errorf("build context: %w", err)
		}
		mode := int64(0o644)
		if st, err := os.Stat(files[n]); err == nil && st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		fmt.Fprintf(h, "file %s %o %d\n", n, mode, len(b))
		h.Write(b)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(b))}); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), hex.EncodeToString(h.Sum(nil)), nil
}

// readBuildOutput drains the engine's JSON progress stream and returns the
// build error it reports, if any.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading build output: %w", err)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			tail = append(tail, s)
			if len(tail) > 20 {
				tail = tail[1:]
			}
		}
		if m.Error != "" {
			return fmt.Errorf("%s\n%s", m.Error, strings.Join(tail, "\n"))
		}
	}
}

// --- small helpers ------------------------------------------------------------

// freePorts returns n distinct free TCP ports on 127.0.0.1. Containers are
// published on fixed ports (not Docker's random ones) because a restarted
// container must come back on the port its clients know.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// poll calls f every interval until it returns nil; it returns f's last error
// when timeout passes first.
func poll(ctx context.Context, timeout, interval time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// uniqueSuffix names one test's Docker objects.
func uniqueSuffix() string {
	return fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
}
