package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"

	"tidepool/internal/envflag"
)

// parseFlags parses args into fs with environment fallbacks (see envflag) and
// rejects positional arguments. It returns ok=false with the exit code to use
// (0 for -h, 2 for bad usage) once the error has been printed.
func parseFlags(fs *flag.FlagSet, args []string, env map[string][]string) (code int, ok bool) {
	if err := envflag.Parse(fs, args, env, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		return usageError(fs, fmt.Errorf("unexpected arguments: %v", fs.Args())), false
	}
	return 0, true
}

// usageError prints err as a usage error of fs and returns exit code 2.
func usageError(fs *flag.FlagSet, err error) int {
	fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	return 2
}

// newLogger returns a text slog logger writing to w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// checkListen reports why addr, the value of flag -name, is not an address
// net.Listen accepts ("HOST:PORT" or ":PORT", port 0-65535), so that a
// typo is a usage error at start rather than a failure after other work.
func checkListen(name, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-%s %q: want HOST:PORT or :PORT: %w", name, addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("-%s %q: port %q: want 0-65535", name, addr, port)
	}
	return nil
}

// checkHTTPURL reports why s, the value of flag -name, is not an absolute
// http:// or https:// URL.
func checkHTTPURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-%s %q: want an absolute http:// or https:// URL", name, s)
	}
	return nil
}
