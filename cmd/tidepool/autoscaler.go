package main

import (
	"context"
	"io"
)

func runAutoscaler(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notImplemented("autoscaler", stderr)
}
