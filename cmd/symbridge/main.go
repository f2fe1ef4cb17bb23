// Command symbridge bridges Symphony's real-time events into NATS JetStream.
//
//	symbridge run --config FILE   the daemon
//	symbridge check --config FILE checks the configuration and every dependency, changing nothing
//	symbridge demo                simulated Agent + embedded JetStream + the real bridge path
//	symbridge agent-sim           the Agent simulator alone, for testing bots
//	symbridge tail                print the events stored in the stream
//	symbridge version
//
// Exit codes: 0 clean stop (SIGINT/SIGTERM or --duration), 1 the bridge
// stopped on an error (credentials rejected, retries exhausted, NATS or the
// stream unusable), 2 bad usage or invalid configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError marks bad usage or invalid configuration (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "symbridge:", err)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

const usage = `symbridge bridges Symphony real-time events into NATS JetStream.

Usage:
  symbridge run --config FILE [--nats-url URL] [--log-level LEVEL]
  symbridge check --config FILE [--json]   check the configuration and its servers, changing nothing
  symbridge demo [--duration 10s] [--dir DIR] [--rate 20] [--quiet]
  symbridge agent-sim [--listen 127.0.0.1:8443] [--rate 5] [--username bot] [--public-key FILE]
  symbridge tail [--config FILE | --nats-url URL] [--subject S] [--since 10m | --seq N] [--count N] [--follow] [--json]
  symbridge healthcheck URL   exit 0 when URL answers 200 (container health checks)
  symbridge config keys       list every configuration key, its environment spelling and default
  symbridge version

Exit codes: 0 clean stop, 1 stopped on an error, 2 bad usage or configuration.
check: 0 every check passed (warnings allowed), 1 a check failed, 2 invalid configuration.
`

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	err := dispatch(ctx, args, environ, stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], environ, stdout, stderr)
	case "check":
		return cmdCheck(ctx, args[1:], environ, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], environ, stdout, stderr)
	case "agent-sim":
		return cmdAgentSim(ctx, args[1:], stdout, stderr)
	case "tail":
		return cmdTail(ctx, args[1:], environ, stdout, stderr)
	case "healthcheck":
		if wantsHelp(args[1:]) {
			fmt.Fprintln(stdout, "Usage: symbridge healthcheck URL\n\nExits 0 when URL answers 200 (for container health checks in images without curl).")
			return nil
		}
		return cmdHealthcheck(ctx, args[1:], stdout)
	case "config":
		if wantsHelp(args[1:]) {
			fmt.Fprintln(stdout, "Usage: symbridge config keys | symbridge config markdown\n\nPrints every configuration key with its environment spelling, default and description.")
			return nil
		}
		return cmdConfig(args[1:], stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}
