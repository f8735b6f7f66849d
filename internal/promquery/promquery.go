// Package promquery reads instant values from a Prometheus server's HTTP API
// through client_golang's api/prometheus/v1: the one Prometheus query client
// of tidepool (the autoscaler's metric source and the demo use it). It starts
// no process and must not import anything of tidepool.
package promquery

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Sample is one element of an instant query's result.
type Sample struct {
	// Labels are the series' labels (nil for a scalar result).
	Labels map[string]string
	// Value is the sample value (may be NaN or ±Inf).
	Value float64
}

// Instant runs the PromQL expression expr at the current time against the
// Prometheus at baseURL (e.g. http://127.0.0.1:9090) and returns its vector;
// a scalar result is returned as one unlabelled sample, an empty vector as
// no samples. Range vectors and strings are errors, as are PromQL and HTTP
// errors; warnings are ignored. It blocks until the answer arrives or ctx
// ends and uses http.DefaultTransport.
func Instant(ctx context.Context, baseURL, expr string) ([]Sample, error) {
	c, err := api.NewClient(api.Config{Address: baseURL})
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	v, _, err := v1.NewAPI(c).Query(ctx, expr, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch v := v.(type) {
	case model.Vector:
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			labels := make(map[string]string, len(s.Metric))
			for k, lv := range s.Metric {
				labels[string(k)] = string(lv)
			}
			out = append(out, Sample{Labels: labels, Value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return []Sample{{Value: float64(v.Value)}}, nil
	default:
		return nil, fmt.Errorf("query %q: unsupported result type %s", expr, v.Type())
	}
}
