package autoscaler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"tidepool/internal/autoscaler/policy"
)

// alertPayload is the part of an alert notification that the autoscaler
// reads. Three senders share it:
//
//   - Alertmanager webhooks (version "4"): status, receiver, alerts;
//   - Grafana unified-alerting webhook contact points: the same fields plus
//     state ("alerting" or "ok"), orgId, title, message and per-alert values
//     (ignored);
//   - Grafana legacy alerting notifications: no alerts array, but state
//     ("alerting", "ok", "no_data", "paused", "pending"), ruleName and tags.
type alertPayload struct {
	Version  string            `json:"version"`
	Status   string            `json:"status"`
	State    string            `json:"state"`
	Receiver string            `json:"receiver"`
	RuleName string            `json:"ruleName"`
	Tags     map[string]string `json:"tags"`
	Alerts   *[]alert          `json:"alerts"`
}

type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Fingerprint string            `json:"fingerprint"`
}

// Alert statuses and Grafana states.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
	stateAlerting  = "alerting"
)

// errNotAlertPayload marks a well-formed JSON document that is not an alert
// payload (no alerts array, no status, no state).
var errNotAlertPayload = errors.New("not an Alertmanager or Grafana webhook payload: no alerts array, status or state")

// parseAlertPayload decodes body as an alert payload. It fails on malformed
// JSON, on a document that is not a JSON object, on trailing data, and with
// errNotAlertPayload when the document has none of "alerts", "status" and
// "state".
func parseAlertPayload(body []byte) (alertPayload, error) {
	var p alertPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("malformed JSON payload: %w", err)
	}
	if dec.More() {
		return p, errors.New("malformed JSON payload: data after the JSON object")
	}
	if p.Alerts == nil && p.Status == "" && p.State == "" {
		return p, errNotAlertPayload
	}
	return p, nil
}

// notFiringReason says why the payload as a whole reports nothing firing
// (a resolved Alertmanager or Grafana notification, Grafana's state "ok",
// "no_data", "paused" or "pending"), or "" when it may carry firing alerts.
// Every indicator present must say firing: a payload is never a signal
// because one field was left out.
func (p alertPayload) notFiringReason() string {
	switch {
	case p.Status != "" && !strings.EqualFold(p.Status, statusFiring):
		return fmt.Sprintf("payload status %q, not firing", p.Status)
	case p.State != "" && !strings.EqualFold(p.State, stateAlerting):
		return fmt.Sprintf("Grafana state %q, not alerting", p.State)
	}
	return ""
}

// size is the number of alerts in p: the alerts array's length, or 1 for a
// payload without one (a Grafana legacy notification is one alert).
func (p alertPayload) size() int {
	if p.Alerts == nil {
		return 1
	}
	return len(*p.Alerts)
}

// firing returns the firing alerts of p: none when the payload says nothing
// is firing (notFiringReason); else each alert whose own status (or, when
// absent, the payload's) is firing. A payload without alerts that is firing
// (status "firing" or Grafana legacy state "alerting") counts as one firing
// alert whose labels are its tags.
func (p alertPayload) firing() []alert {
	if p.notFiringReason() != "" {
		return nil
	}
	if p.Alerts == nil || len(*p.Alerts) == 0 {
		if p.Status == "" && p.State == "" {
			return nil
		}
		labels := maps.Clone(p.Tags)
		if p.RuleName != "" {
			if labels == nil {
				labels = map[string]string{}
			}
			if labels["alertname"] == "" {
				labels["alertname"] = p.RuleName
			}
		}
		return []alert{{Status: statusFiring, Labels: labels}}
	}
	var out []alert
	for _, a := range *p.Alerts {
		st := a.Status
		if st == "" {
			st = p.Status
		}
		if strings.EqualFold(st, statusFiring) || (st == "" && strings.EqualFold(p.State, stateAlerting)) {
			out = append(out, a)
		}
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
