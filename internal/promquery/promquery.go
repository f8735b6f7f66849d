// Package promquery reads instant values, ranges of values and alert states from a
// Prometheus server's HTTP API through client_golang's API client
// (github.com/prometheus/client_golang/api): the one Prometheus query client
// of tidepool (the autoscaler's metric source and the demo use it). It starts
// no process and must not import anything of tidepool.
//
// Why not client_golang's api/prometheus/v1 on top: it decodes with
// json-iterator and reflect2, which add 1.5 MB to the binary for two kinds
// of query (measured); the answer's envelope, an instant vector and a
// matrix are a few fields that encoding/json reads.
package promquery

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	r, err := call(ctx, baseURL, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
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

// Series is one element of a range query's result.
type Series struct {
	// Labels are the series' labels.
	Labels map[string]string
	// Points are the series' values at the query's steps, in time order;
	// steps without a value are missing.
	Points []Point
}

// Point is one value of a Series.
type Point struct {
	// T is the step's time, to the millisecond.
	T time.Time
	// V is the value (may be NaN or ±Inf).
	V float64
}

// Range runs the PromQL expression expr at start, start+step, ... up to end
// against the Prometheus at baseURL and returns its matrix, one Series per
// result series; an empty matrix is no series. Other result types are
// errors, as are PromQL and HTTP errors (Prometheus refuses more than
// 11,000 points per series); warnings are ignored. Times are sent to the
// millisecond. It blocks until the answer arrives or ctx ends and uses
// http.DefaultTransport.
func Range(ctx context.Context, baseURL, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	out, err := rangeQuery(ctx, baseURL, expr, start, end, step)
	if err != nil {
		return nil, fmt.Errorf("query range %q: %w", expr, err)
	}
	return out, nil
}

func rangeQuery(ctx context.Context, baseURL, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	r, err := call(ctx, baseURL, "/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {unixSeconds(start)},
		"end":   {unixSeconds(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
	if err != nil {
		return nil, err
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("unsupported result type %s", r.Data.ResultType)
	}
	var m []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	if err := json.Unmarshal(r.Data.Result, &m); err != nil {
		return nil, fmt.Errorf("decode matrix: %w", err)
	}
	out := make([]Series, 0, len(m))
	for _, series := range m {
		s := Series{Labels: series.Metric, Points: make([]Point, 0, len(series.Values))}
		for _, pair := range series.Values {
			ts, ok := pair[0].(float64)
			if !ok {
				return nil, fmt.Errorf("sample time %v is not a number", pair[0])
			}
			f, err := value(pair)
			if err != nil {
				return nil, err
			}
			s.Points = append(s.Points, Point{T: time.UnixMilli(int64(math.Round(ts * 1000))), V: f})
		}
		out = append(out, s)
	}
	return out, nil
}

// unixSeconds writes t as the API takes it: Unix seconds to the millisecond.
func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// call POSTs form to the API endpoint path of the Prometheus at baseURL and
// returns the envelope of a successful answer; an error answer is returned
// as an error with its type and message.
func call(ctx context.Context, baseURL, path string, form url.Values) (response, error) {
	c, err := api.NewClient(api.Config{Address: baseURL})
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequest(http.MethodPost, c.URL(path, nil).String(), strings.NewReader(form.Encode()))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := c.Do(ctx, req)
	if err != nil {
		return response{}, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return response{}, fmt.Errorf("%s: decode answer: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return response{}, fmt.Errorf("%s: %s: %s", resp.Status, r.ErrorType, r.Error)
	}
	return r, nil
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
