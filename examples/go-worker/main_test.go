package main

import (
	"bytes"
	"testing"
)

func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{
		{"--since", "10m", "--seq", "3"},
		{"--follow"},
		{"--batch", "0"},
		{"--ack-wait", "10ms"},
		{"--since", "soon"},
		{"--since", "-5m"},
		{"extra"},
		{"--no-such-flag"},
	} {
		stderr.Reset()
		if code := run(args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("run %v = %d, want 2 (bad usage)", args, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("run %v: no message on stderr", args)
		}
	}
	if code := run([]string{"--help"}, &bytes.Buffer{}, &stderr); code != 0 {
		t.Errorf("run --help = %d, want 0", code)
	}
}
