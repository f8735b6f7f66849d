package main

import (
	"context"
	"io"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return notImplemented("load", stderr)
}
