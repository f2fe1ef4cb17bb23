package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/internal/config"
	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/subjects"
	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/test/bench/benchdata"
)

// benchUser is the simulator's only service account.
const benchUser = "bench"

// workload is what the three measurements share: the events, the config
// file symbridge runs with (the children read it too, so pod, subjects and
// stream settings are symbridge's own), and the expected messages.
type workload struct {
	o          options
	tmp        string
	natsURL    string
	natsPID    int // 0: not started by this program (-nats-url)
	events     [][]byte
	eventsFile string
	keyFile    string
	meanSize   int
	nc         *nats.Conn
	js         jetstream.JetStream

	agent     *agentState
	agentHost string
	agentPort int

	// expected message of each Msg-Id; filled by generate.
	want map[string]expected
}

// expected is a message the bridge builds: its fingerprint and the index
// of its event.
type expected struct {
	fp [32]byte
	i  int
}

// newWorkload sets up what every measurement needs but the events (see
// generate): the bot's key, a NATS connection and the simulator.
func newWorkload(o options, tmp, natsURL string) (*workload, error) {
	w := &workload{o: o, tmp: tmp, natsURL: natsURL}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	w.keyFile = filepath.Join(tmp, "bot.pem")
	if err := os.WriteFile(w.keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(natsURL, nats.Name("symbridge-bench-verify"))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	w.nc = nc
	if w.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, err
	}
	if err := w.startAgent(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// generate makes the events, writes them for the children and computes
// the expected messages from symbridge's own configuration.
func (w *workload) generate() error {
	w.events = benchdata.Events(w.o.events, w.o.size, w.o.seed)
	w.meanSize = benchdata.MeanSize(w.events)
	w.eventsFile = filepath.Join(w.tmp, "events.bin")
	if err := writeEvents(w.eventsFile, w.events); err != nil {
		return err
	}
	cfgPath, err := w.configFile(w.agentHost, w.agentPort, "BENCH_EXPECT")
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	return w.expect(cfg)
}

func (w *workload) close() {
	w.nc.Close()
	if w.agent != nil {
		w.agent.agent.Close()
	}
}

func (w *workload) streamName(measure string) string {
	return "BENCH_" + strings.ToUpper(strings.ReplaceAll(measure, "-", "_"))
}

// configFile writes symbridge's configuration: defaults except the
// simulator's address and credentials, nats.url, the stream name, and
// http.listen disabled (the default :8080 could clash with anything else
// on the machine; the health endpoint plays no part in the hot path).
func (w *workload) configFile(agentHost string, agentPort int, stream string) (string, error) {
	path := filepath.Join(w.tmp, "symbridge-"+stream+".yaml")
	body := fmt.Sprintf(`scheme: http
host: %s
port: %d
bot:
  username: %s
  privateKey:
    path: %s
nats:
  url: %s
  stream:
    name: %s
http:
  listen: ""
`, agentHost, agentPort, benchUser, w.keyFile, w.natsURL, stream)
	if w.o.readers > 0 {
		body += fmt.Sprintf("bridge:\n  readers: %d\n", w.o.readers)
	}
	return path, os.WriteFile(path, []byte(body), 0o600)
}

// loadConfig reads a config file the way `symbridge run` does.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// streamConfig is the stream `symbridge run` creates from cfg.
func streamConfig(cfg *config.Config, name string) bridge.StreamConfig {
	s := cfg.NATS.Stream
	return bridge.StreamConfig{Name: name, Subjects: s.Subjects, Duplicates: s.Duplicates, MaxAge: s.MaxAge,
		Replicas: s.Replicas, MaxMsgSize: s.MaxMsgSize}
}

// buildMsgs turns the events into the messages the bridge publishes, with
// the bridge's own functions (subject mapping, BuildMsg), so the raw and
// naive measurements send exactly what symbridge sends.
func buildMsgs(cfg *config.Config, events [][]byte) ([]*nats.Msg, error) {
	m, err := subjects.Compile(cfg.Bridge.Subject)
	if err != nil {
		return nil, err
	}
	msgs := make([]*nats.Msg, len(events))
	for i, raw := range events {
		ev := symphony.ParseEvent(raw)
		if ev.Err != nil {
			return nil, fmt.Errorf("event %d does not decode: %w", i, ev.Err)
		}
		v := subjects.FromEvent(&ev, cfg.Bridge.Pod, cfg.Bridge.Source)
		msgs[i] = bridge.BuildMsg(&ev, m.Subject(&v), cfg.Bridge.Pod, cfg.Bridge.Source)
	}
	return msgs, nil
}

// expect computes the fingerprint of every expected message and checks that
// the Msg-Ids are unique (otherwise JetStream would rightly drop some).
func (w *workload) expect(cfg *config.Config) error {
	msgs, err := buildMsgs(cfg, w.events)
	if err != nil {
		return err
	}
	w.want = make(map[string]expected, len(msgs))
	for i, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if _, dup := w.want[id]; dup {
			return fmt.Errorf("two generated events share Msg-Id %s", id)
		}
		w.want[id] = expected{fp: fingerprint(m.Subject, m.Header, m.Data), i: i}
	}
	return nil
}

// fingerprint hashes subject, headers (sorted, Nats-Msg-Id included) and
// payload.
func fingerprint(subject string, h nats.Header, data []byte) [32]byte {
	s := sha256.New()
	s.Write([]byte(subject))
	s.Write([]byte{0})
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(s, "%s:%s\n", k, v)
		}
	}
	s.Write([]byte{0})
	s.Write(data)
	var out [32]byte
	copy(out[:], s.Sum(nil))
	return out
}

func (w *workload) resetStream(ctx context.Context, name string) error {
	if err := w.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	return nil
}

func (w *workload) deleteStream(ctx context.Context, name string) error {
	if err := w.js.DeleteStream(ctx, name); err != nil {
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	return nil
}

// verify reads the whole stream back: exactly n messages, each one the
// message the bridge builds (same subject, headers and payload) from one of
// the first n events, none twice.
func (w *workload) verify(ctx context.Context, name string, n int) error {
	s, err := w.js.Stream(ctx, name)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(n) {
		return fmt.Errorf("stream %s holds %d messages, want %d", name, info.State.Msgs, n)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	seen := make(map[string]bool, n)
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	it, err := c.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return err
	}
	defer it.Stop()
	for len(seen) < n {
		if vctx.Err() != nil {
			return fmt.Errorf("stream %s: read back %d of %d messages in time", name, len(seen), n)
		}
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("stream %s: read back: %w", name, err)
		}
		id := m.Headers().Get(jetstream.MsgIDHeader)
		want, ok := w.want[id]
		switch {
		case !ok || want.i >= n:
			return fmt.Errorf("stream %s: unexpected Msg-Id %q", name, id)
		case seen[id]:
			return fmt.Errorf("stream %s: Msg-Id %s stored twice", name, id)
		case fingerprint(m.Subject(), m.Headers(), m.Data()) != want.fp:
			return fmt.Errorf("stream %s: message %s differs from the one the bridge builds (subject %s)", name, id, m.Subject())
		}
		seen[id] = true
	}
	return nil
}

func writeEvents(path string, events [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	var n [4]byte
	for _, e := range events {
		binary.LittleEndian.PutUint32(n[:], uint32(len(e)))
		bw.Write(n[:])
		bw.Write(e)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readEvents(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		n := int(binary.LittleEndian.Uint32(b))
		if len(b) < 4+n {
			return nil, io.ErrUnexpectedEOF
		}
		out = append(out, b[4:4+n:4+n])
		b = b[4+n:]
	}
	return out, nil
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// procCPU is utime+stime of a process (all threads) from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	const clkTck = 100                       // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// cpuOf is procCPU of pid, 0 when the pid is unknown (0) or unreadable.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, _ := procCPU(pid)
	return d
}

// procStatus reads a "kB" field (VmHWM, VmRSS) of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
