package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// errHelpShown: the command printed its help because it was asked to
// (-h, -help, --help). run turns it into a clean exit 0.
var errHelpShown = errors.New("help shown")

// newFlags is a command's flag set. Its usage line and flags go to stdout
// when help is asked for, and to stderr after a usage error.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: symbridge %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args. --help prints the command's usage to stdout and
// returns errHelpShown; a bad flag prints it to stderr and is a usage
// error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelpShown
	default:
		fs.SetOutput(stderr)
		fs.Usage()
		return usageError{err}
	}
}

// wantsHelp: the sole argument of a command without flags asks for help.
func wantsHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help")
}

// flagOverrides are the configuration keys that flags override, for
// config.Load: a flag left empty overrides nothing.
func flagOverrides(flags map[string]string) map[string]any {
	m := map[string]any{}
	for key, v := range flags {
		if v != "" {
			m[key] = v
		}
	}
	return m
}
