// Package promquery reads instant values from a Prometheus server's HTTP API
// through client_golang's API client (github.com/prometheus/client_golang/api):
// the one Prometheus query client of tidepool (the autoscaler's metric source
// and the demo use it). It starts no process and must not import anything of
// tidepool.
//
// Why not client_golang's api/prometheus/v1 on top: it decodes with
// json-iterator and reflect2, which add 1.5 MB to the binary for one instant
// query (measured); the answer's envelope and an instant vector are a few
// fields that encoding/json reads.
package promquery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/api"
)

// Sample is one element of an instant query's result.
type Sample struct {
	// Labels are the series' labels (nil for a scalar result).
	Labels map[string]string
	// Value is the sample value (may be NaN or ±Inf).
	Value float64
}

// response is the envelope of every Prometheus HTTP API answer.
type response struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Instant runs the PromQL expression expr at the current time against the
// Prometheus at baseURL (e.g. http://127.0.0.1:9090) and returns its vector;
// a scalar result is returned as one unlabelled sample, an empty vector as
// no samples. Range vectors and strings are errors, as are PromQL and HTTP
// errors; warnings are ignored. It blocks until the answer arrives or ctx
// ends and uses http.DefaultTransport.
func Instant(ctx context.Context, baseURL, expr string) ([]Sample, error) {
	out, err := instant(ctx, baseURL, expr)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	return out, nil
}

func instant(ctx context.Context, baseURL, expr string) ([]Sample, error) {
	c, err := api.NewClient(api.Config{Address: baseURL})
	if err != nil {
		return nil, err
	}
	form := url.Values{"query": {expr}}
	req, err := http.NewRequest(http.MethodPost, c.URL("/api/v1/query", nil).String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: decode answer: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s: %s", resp.Status, r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			f, err := value(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, Sample{Labels: s.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(r.Data.Result, &s); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		f, err := value(s)
		if err != nil {
			return nil, err
		}
		return []Sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("unsupported result type %s", r.Data.ResultType)
	}
}

// value parses a sample pair [time, "value"].
func value(pair [2]any) (float64, error) {
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", pair[1])
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	return f, nil
}
