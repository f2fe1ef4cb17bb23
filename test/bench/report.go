package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

type report struct {
	Opts     options
	Args     []string
	Results  []result
	Pairs    []float64   // symbridge/raw per repetition
	Paced    []pacedPair // raw and symbridge at each paced rate
	MeanSize int
	Server   string
	Load     string // load averages before the measurements
	When     time.Time
}

const (
	beginMark = "<!-- bench:begin (written by go run ./test/bench) -->"
	endMark   = "<!-- bench:end -->"
)

func get(rs []result, name string) (result, bool) {
	for _, x := range rs {
		if x.Name == name {
			return x, true
		}
	}
	return result{}, false
}

// markdown renders the table, the ratios, the targets and the command.
func (r report) markdown() string {
	var b strings.Builder
	cmd := "go run ./test/bench"
	if len(r.Args) > 0 {
		cmd += " " + strings.Join(r.Args, " ")
	}
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s, %s, %s; load average %s before the measurements); %d events of %d bytes on average, %d per batch.\n\n",
		r.When.Format("2006-01-02 15:04 UTC"), cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH,
		orDefault(r.Server, "external nats-server"), r.Load, r.Opts.events, r.MeanSize, r.Opts.batch)
	fmt.Fprintf(&b, "```\n%s\n```\n\n", cmd)
	b.WriteString("| measurement | events/s | CPU per event | batch p50 | batch p99 | peak RSS | notes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.Results {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f µs | %s | %s | %.1f MiB | %s |\n", describe(x.Name), x.Rate(), x.CPUPerEvent(),
			round(x.P50), round(x.P99), mib(x.PeakRSS), x.Note)
	}
	b.WriteString("\n")
	raw, okRaw := get(r.Results, "raw")
	naive, okNaive := get(r.Results, "naive")
	sb, okSB := get(r.Results, "symbridge")
	if okSB && okRaw {
		fmt.Fprintf(&b, "- symbridge / raw ceiling (3/1): **%.2fx** (target ≥ 0.9x)", sb.Rate()/raw.Rate())
		if len(r.Pairs) > 1 {
			b.WriteString("; per repetition (each raw run followed by a symbridge run):")
			for _, p := range r.Pairs {
				fmt.Fprintf(&b, " %.2fx", p)
			}
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "- p99 batch latency symbridge − raw: **%s** (target ≤ 2 ms)\n", round(sb.P99-raw.P99))
	}
	if okSB && okNaive {
		fmt.Fprintf(&b, "- symbridge / naive (3/2): **%.1fx** (target ≥ 10x)\n", sb.Rate()/naive.Rate())
	}
	if okSB {
		fmt.Fprintf(&b, "- bridge CPU per event: **%.2f µs** (target ≤ 10 µs); peak RSS **%.1f MiB** (target ≤ 64 MiB)\n",
			sb.CPUPerEvent(), mib(sb.PeakRSS))
	}
	for _, p := range r.Paced {
		r.pacedMarkdown(&b, p)
	}
	return b.String()
}

// pacedMarkdown renders the paced runs at one rate: latency below
// saturation.
func (r report) pacedMarkdown(b *strings.Builder, p pacedPair) {
	fmt.Fprintf(b, "\nPaced at %.0f events/s (the first %d events, one batch of %d every %s; latency below saturation):\n\n",
		p.Pace.rate, p.Pace.events, r.Opts.batch, p.Pace.interval(r.Opts.batch).Round(time.Microsecond))
	b.WriteString("| measurement | events/s | CPU per event | batch p50 | batch p99 | bridge's own p50 | bridge's own p99 | notes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range []result{p.Raw, p.Symbridge} {
		own50, own99 := "—", "—"
		if x.BridgeP99 > 0 {
			own50, own99 = round(x.BridgeP50).String(), round(x.BridgeP99).String()
		}
		fmt.Fprintf(b, "| %s | %.0f | %.2f µs | %s | %s | %s | %s | %s |\n", describe(x.Name), x.Rate(), x.CPUPerEvent(),
			round(x.P50), round(x.P99), own50, own99, x.Note)
	}
	if p.Symbridge.BridgeP99 > 0 {
		fmt.Fprintf(b, "\n- p99 added by the bridge at %.0f events/s: **%s** (target ≤ 2 ms): the bridge's own p99 − raw p99; simulator side (one HTTP round trip more): %s; p50 added: %s\n",
			p.Pace.rate, round(p.Symbridge.BridgeP99-p.Raw.P99), round(p.Symbridge.P99-p.Raw.P99), round(p.Symbridge.BridgeP50-p.Raw.P50))
	}
}

func describe(name string) string {
	switch name {
	case "raw":
		return "1 raw: PublishMsgAsync, wait per batch"
	case "naive":
		return "2 naive: sync PublishMsg per event"
	case "symbridge":
		return "3 symbridge run (default config)"
	case "raw-paced":
		return "1 raw, paced"
	case "symbridge-paced":
		return "3 symbridge, paced"
	}
	return name
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// writeFile puts the table between the bench markers of path, keeping the
// rest of the file; without the markers it is appended, and a missing file
// is created with a title.
func (r report) writeFile(path string) error {
	return writeMarked(path, beginMark, endMark, r.markdown(), func(old []byte, block string) []byte {
		if len(old) == 0 {
			return []byte("# Benchmarks\n\n" + block)
		}
		return append(append(old, '\n'), block...)
	})
}

// writeMarked puts body between the begin and end markers of path, keeping
// the rest of the file. When the markers are missing, missing makes the new
// file from the old one (empty if there is none) and the marked block.
func writeMarked(path, begin, end, body string, missing func(old []byte, block string) []byte) error {
	block := begin + "\n" + body + end + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var out []byte
	i, j := bytes.Index(old, []byte(begin)), bytes.Index(old, []byte(end))
	if i >= 0 && j > i {
		out = append(out, old[:i]...)
		out = append(out, block...)
		rest := old[j+len(end):]
		out = append(out, bytes.TrimPrefix(rest, []byte("\n"))...)
	} else {
		out = missing(old, block)
	}
	return os.WriteFile(path, out, 0o644)
}
