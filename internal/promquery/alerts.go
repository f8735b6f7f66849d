package promquery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// AlertStates returns the state of every alerting rule of the Prometheus at
// baseURL, keyed by alert name: "inactive", "pending" or "firing" (the most
// advanced state when several rules share a name). It reads
// /api/v1/rules?type=alert, which lists inactive rules too (unlike
// /api/v1/alerts).
func AlertStates(ctx context.Context, baseURL string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/rules?type=alert", nil)
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Groups []struct {
				Rules []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					State string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("alert rules: decode: %w", err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("alert rules: %s (HTTP %d)", body.Error, resp.StatusCode)
	}
	rank := map[string]int{"inactive": 1, "pending": 2, "firing": 3}
	out := map[string]string{}
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			if r.Type != "alerting" {
				continue
			}
			if _, ok := rank[r.State]; !ok {
				return nil, fmt.Errorf("alert rules: %s has unknown state %q", r.Name, r.State)
			}
			if rank[r.State] > rank[out[r.Name]] {
				out[r.Name] = r.State
			}
		}
	}
	return out, nil
}
