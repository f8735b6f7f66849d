package promrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Series is one element of a range-query matrix result.
type Series struct {
	Labels map[string]string
	// Points are the series' values at the query's steps, in time order;
	// steps without a value are missing.
	Points []Point
}

// Point is one value of a Series.
type Point struct {
	T time.Time
	V float64
}

// QueryRange runs a PromQL range query against the Prometheus at baseURL,
// evaluating expr at start, start+step, ... up to end, and returns its
// matrix. Prometheus refuses more than 11,000 points per series.
func QueryRange(ctx context.Context, baseURL, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	q := url.Values{
		"query": {expr},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	resultType, result, err := apiData(ctx, baseURL+"/api/v1/query_range?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("query range %q: %w", expr, err)
	}
	if resultType != "matrix" {
		return nil, fmt.Errorf("query range %q: unsupported result type %q", expr, resultType)
	}
	var matrix []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	if err := json.Unmarshal(result, &matrix); err != nil {
		return nil, fmt.Errorf("query range %q: decode matrix: %w", expr, err)
	}
	out := make([]Series, 0, len(matrix))
	for _, r := range matrix {
		s := Series{Labels: r.Metric, Points: make([]Point, 0, len(r.Values))}
		for _, v := range r.Values {
			ts, ok := v[0].(float64)
			if !ok {
				return nil, fmt.Errorf("query range %q: timestamp %v is not a number", expr, v[0])
			}
			f, err := parseValue(v[1])
			if err != nil {
				return nil, fmt.Errorf("query range %q: %w", expr, err)
			}
			s.Points = append(s.Points, Point{T: time.UnixMilli(int64(ts*1000 + 0.5)), V: f})
		}
		out = append(out, s)
	}
	return out, nil
}

// formatTime writes t as Prometheus' API takes it: Unix seconds with
// millisecond precision.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}
