package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"tidepool/internal/atomicfile"
	"tidepool/internal/demo"
)

// Policies returns the policies named by `tidepool simulate
// -validate-policy`: "webhook", "target-tracking", "predictive", "both"
// (webhook, then target-tracking) or "all" (the three in that order).
func Policies(which string) ([]string, error) {
	switch which {
	case "both":
		return []string{"webhook", "target-tracking"}, nil
	case "all":
		return []string{"webhook", "target-tracking", "predictive"}, nil
	case "webhook", "target-tracking", "predictive":
		return []string{which}, nil
	default:
		return nil, fmt.Errorf("%q: want webhook, target-tracking, predictive, both or all", which)
	}
}

// All runs the validation of each policy in turn (see Run; minutes each),
// with the demo's output and report in dir/validate-<policy> (and no live
// page), and writes the comparison chart dir/validate-<policy>.png; dir ""
// means "simulate-out". It prints progress and each verdict to w and
// reports whether every validation passed. It returns an error, after
// stopping everything the demo started, when a run fails or ctx is
// cancelled.
func All(ctx context.Context, policies []string, dir string, w io.Writer) (ok bool, err error) {
	if dir == "" {
		dir = "simulate-out"
	}
	ok = true
	for _, p := range policies {
		fmt.Fprintf(w, "validation of the %s policy: running the demo (a few minutes) ...\n", p)
		v, err := Run(ctx, Config{Policy: p, Demo: demo.Config{OutDir: filepath.Join(dir, "validate-"+p), Out: w, LiveAddr: demo.LiveOff}})
		if errors.Is(err, context.Canceled) {
			return false, fmt.Errorf("interrupted; everything the demo started has been stopped: %w", err)
		}
		if err != nil {
			return false, err
		}
		var png bytes.Buffer
		if err := v.WriteChart(&png); err != nil {
			return false, err
		}
		path := filepath.Join(dir, "validate-"+p+".png")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("output directory: %w", err)
		}
		if err := atomicfile.Write(path, png.Bytes(), 0o644); err != nil {
			return false, fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Fprintln(w, v.Summary())
		fmt.Fprintf(w, "figure: %s\n", path)
		ok = ok && v.OK
	}
	return ok, nil
}
