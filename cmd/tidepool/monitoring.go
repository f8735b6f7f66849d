package main

import (
	"context"
	"io"
)

func runMonitoring(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notImplemented("monitoring", stderr)
}
