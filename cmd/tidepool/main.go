// Command tidepool is a runnable proof that a cloud service can autoscale: a
// deliberately slow web app on an instance pool behind a network load balancer,
// monitoring that notices high or low CPU, and an autoscaler that grows or
// shrinks the pool. Each component is a subcommand; the logic lives in
// internal/<component> packages. Each file here turns one command's flags and
// environment into a configuration, rejects a bad one (exit 2) before
// anything starts, and runs the component; simulate's trace loop and the HTTP
// serving of cloud and discover still live here too.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: it parses args, runs until ctx is cancelled (by
// SIGINT/SIGTERM) or its work is done, and returns the process exit code
// (0 success, 1 failure, 2 bad usage).
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"app":        {"run the deliberately slow web app (one pool member)", runApp},
	"cloud":      {"run the local Exoscale-API-compatible cloud", runCloud},
	"discover":   {"write pool members as Prometheus file_sd targets", runDiscover},
	"autoscaler": {"scale the pool from alert webhooks", runAutoscaler},
	"load":       {"generate open-model HTTP load", runLoad},
	"demo":       {"run the whole stack on this machine with a load test and a report", runDemo},
	"simulate":   {"compare scaling policies on a simulated pool", runSimulate},
	"bench":      {"benchmark the load balancer and the load generator", runBench},
	"monitoring": {"render the Prometheus/Alertmanager/Grafana configuration", runMonitoring},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tidepool: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tidepool <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'tidepool <command> -h' for the flags of one command.")
}
