package main

import (
	"context"
	"io"
)

func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notImplemented("discover", stderr)
}
