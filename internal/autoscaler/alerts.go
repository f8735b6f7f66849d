package autoscaler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"tidepool/internal/autoscaler/policy"
)

// alertPayload is the part of an Alertmanager webhook payload (version "4")
// and of a Grafana unified-alerting webhook contact point payload that the
// autoscaler reads; both share this shape (Grafana adds orgId, title, state,
// message and per-alert values, which are ignored).
type alertPayload struct {
	Version  string   `json:"version"`
	Status   string   `json:"status"`
	Receiver string   `json:"receiver"`
	Alerts   *[]alert `json:"alerts"`
}

type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Fingerprint string            `json:"fingerprint"`
}

// Alert statuses in both payload formats.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// errNotAlertPayload marks a well-formed JSON document that is not an alert
// payload (no "alerts" array).
var errNotAlertPayload = errors.New("not an Alertmanager or Grafana webhook payload: no alerts array")

// parseAlertPayload decodes body as an alert payload. It fails on malformed
// JSON, on a document that is not a JSON object, on trailing data, and with
// errNotAlertPayload when the "alerts" array is missing.
func parseAlertPayload(body []byte) (alertPayload, error) {
	var p alertPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("malformed JSON payload: %w", err)
	}
	if dec.More() {
		return p, errors.New("malformed JSON payload: data after the JSON object")
	}
	if p.Alerts == nil {
		return p, errNotAlertPayload
	}
	return p, nil
}

// firing returns the firing alerts of p. An alert without its own status
// takes the payload's status; a payload with no alerts but status "firing"
// counts as one firing alert with no labels.
func (p alertPayload) firing() []alert {
	var out []alert
	for _, a := range *p.Alerts {
		st := a.Status
		if st == "" {
			st = p.Status
		}
		if strings.EqualFold(st, statusFiring) {
			out = append(out, a)
		}
	}
	if len(*p.Alerts) == 0 && strings.EqualFold(p.Status, statusFiring) {
		out = append(out, alert{Status: statusFiring})
	}
	return out
}

// alertName is the alert's "alertname" label, or its fingerprint.
func (a alert) name() string {
	if n := a.Labels["alertname"]; n != "" {
		return n
	}
	return a.Fingerprint
}

// direction reads the scaling direction of a from label (first) or
// annotation; "" names are skipped. It returns the raw value found too, for
// error messages.
func (a alert) direction(label, annotation string) (policy.Direction, string) {
	var raw string
	if label != "" {
		raw = a.Labels[label]
	}
	if raw == "" && annotation != "" {
		raw = a.Annotations[annotation]
	}
	d, _ := policy.ParseDirection(raw)
	return d, raw
}
