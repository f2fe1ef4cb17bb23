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
	Pairs    []float64 // symbridge/raw per repetition
	MeanSize int
	Server   string
	When     time.Time
}

const (
	beginMark = "<!-- bench:begin (written by go run ./test/bench) -->"
	endMark   = "<!-- bench:end -->"
)

func (r report) get(name string) (result, bool) {
	for _, x := range r.Results {
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
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s, %s, %s); %d events of %d bytes on average, %d per batch.\n\n",
		r.When.Format("2006-01-02 15:04 UTC"), cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH,
		orDefault(r.Server, "external nats-server"), r.Opts.events, r.MeanSize, r.Opts.batch)
	fmt.Fprintf(&b, "```\n%s\n```\n\n", cmd)
	b.WriteString("| measurement | events/s | CPU per event | batch p50 | batch p99 | peak RSS | notes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.Results {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f µs | %s | %s | %.1f MiB | %s |\n", describe(x.Name), x.Rate(), x.CPUPerEvent(),
			round(x.P50), round(x.P99), mib(x.PeakRSS), x.Note)
	}
	b.WriteString("\n")
	raw, okRaw := r.get("raw")
	naive, okNaive := r.get("naive")
	sb, okSB := r.get("symbridge")
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
	return b.String()
}

func describe(name string) string {
	switch name {
	case "raw":
		return "1 raw: PublishMsgAsync, wait per batch"
	case "naive":
		return "2 naive: sync PublishMsg per event"
	case "symbridge":
		return "3 symbridge run (default config)"
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
// rest of the file; a missing file is created with a title.
func (r report) writeFile(path string) error {
	block := beginMark + "\n" + r.markdown() + endMark + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var out []byte
	i, j := bytes.Index(old, []byte(beginMark)), bytes.Index(old, []byte(endMark))
	switch {
	case i >= 0 && j > i:
		out = append(out, old[:i]...)
		out = append(out, block...)
		rest := old[j+len(endMark):]
		out = append(out, bytes.TrimPrefix(rest, []byte("\n"))...)
	case len(old) > 0:
		out = append(append(old, '\n'), block...)
	default:
		out = []byte("# Benchmarks\n\n" + block)
	}
	return os.WriteFile(path, out, 0o644)
}
