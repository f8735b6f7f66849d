// Package envflag lets every flag of a flag.FlagSet be set from an environment
// variable, with the command line taking precedence. Subcommands use it so that
// the course's variables (EXOSCALE_KEY, LISTEN_PORT, ...) and flags configure
// the same fields.
//
// It owns the flag-from-environment rule and must not import any other
// tidepool package.
package envflag

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Parse sets flags in fs from the environment, then parses args. names maps a
// flag name to the environment variables that may set it (the first one set
// wins). lookup reads the environment; nil means os.LookupEnv. Like
// flag.Parse, it prints any error and the usage (listing each flag's
// variables) to fs.Output() before returning the error; a bad value in the
// environment names the variable. A duration given as a bare number ("5")
// is rejected with the hint "did you mean 5s?". fs should use
// flag.ContinueOnError.
func Parse(fs *flag.FlagSet, args []string, names map[string][]string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	fs.Usage = usageWithEnv(fs, names)
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if _, ok := g.Get().(time.Duration); ok {
				f.Value = durationValue{g}
			}
		}
	})
	for name := range names {
		if fs.Lookup(name) == nil {
			return fmt.Errorf("envflag: no flag %q", name)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The environment only fills flags the command line did not set, so a
	// flag replaces (rather than adds to) a list given in the environment.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, vars := range names {
		if set[name] {
			continue
		}
		for _, v := range vars {
			val, ok := lookup(v)
			if !ok || val == "" {
				continue
			}
			if err := fs.Set(name, val); err != nil {
				err = fmt.Errorf("invalid value %q for environment variable %s: %w", val, v, err)
				fmt.Fprintln(fs.Output(), err)
				fs.Usage()
				return err
			}
			break
		}
	}
	return nil
}

func usageWithEnv(fs *flag.FlagSet, names map[string][]string) func() {
	return func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage of %s:\n", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			if _, ok := f.Value.(durationValue); ok && typ == "value" {
				typ = "duration"
			}
			fmt.Fprintf(out, "  -%s %s\n    \t%s", f.Name, typ, strings.ReplaceAll(usage, "\n", "\n    \t"))
			if !isZero(f.DefValue) {
				fmt.Fprintf(out, " (default %q)", f.DefValue)
			}
			if vars := names[f.Name]; len(vars) > 0 {
				fmt.Fprintf(out, " [env %s]", strings.Join(vars, ", "))
			}
			fmt.Fprintln(out)
		})
	}
}

// isZero reports whether a flag's default is its type's zero value, which
// the usage does not repeat.
func isZero(v string) bool {
	switch v {
	case "", "0", "0s", "false", "[]":
		return true
	}
	return false
}

// durationValue is a duration flag whose error for a number without a unit
// says which unit was probably meant.
type durationValue struct{ flag.Getter }

func (d durationValue) Set(s string) error {
	err := d.Getter.Set(s)
	if err == nil {
		return nil
	}
	if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
		return fmt.Errorf("a duration needs a unit: did you mean %ss?", s)
	}
	return fmt.Errorf("want a duration such as 500ms, 5s or 1m30s: %w", err)
}
