package main

import (
	"context"
	"io"
)

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notImplemented("simulate", stderr)
}
