package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/symbridge/symbridge/internal/config"
)

// cmdConfig prints the configuration reference from the one table that also
// holds the defaults, so the docs cannot drift from the code.
func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) != 1 || (args[0] != "keys" && args[0] != "markdown") {
		return usagef("usage: symbridge config keys | symbridge config markdown")
	}
	if args[0] == "markdown" {
		fmt.Fprintln(stdout, "| key | environment | type | default | description |")
		fmt.Fprintln(stdout, "| --- | --- | --- | --- | --- |")
		for _, k := range config.Keys() {
			def := k.Default
			if def != "" {
				def = "`" + def + "`"
			}
			fmt.Fprintf(stdout, "| `%s` | `%s` | %s | %s | %s |\n", k.Key, k.Env, k.Type, def, k.Description)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENVIRONMENT\tDEFAULT\tDESCRIPTION")
	for _, k := range config.Keys() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Key, k.Env, k.Default, k.Description)
	}
	return tw.Flush()
}
