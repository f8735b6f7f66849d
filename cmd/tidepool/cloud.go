package main

import (
	"context"
	"io"
)

func runCloud(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notImplemented("cloud", stderr)
}
