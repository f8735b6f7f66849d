package autoscaler

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/httpbody"
)

// Handler returns the autoscaler's HTTP endpoints:
//
//   - /up, /down (POST or PUT; GET too with Config.OpenWebhooks; never HEAD
//     or OPTIONS): record a scale-up or scale-down signal. An optional JSON
//     body that is an Alertmanager or Grafana alert payload reporting nothing
//     firing (resolved, Grafana state "ok") is ignored; a body that is not
//     JSON is rejected with 400.
//   - /webhook (POST or PUT, JSON): an Alertmanager v4 or Grafana
//     unified-alerting payload; each firing alert's direction comes from its
//     DirectionLabel label or DirectionAnnotation annotation.
//   - GET /status (JSON Status), GET /metrics (Prometheus), GET /health.
//   - GET / : the read-only HTML status page (status.go), behind the same
//     credentials as the webhooks.
//
// Webhook endpoints answer 405 for another method, 401 without the
// configured credentials, 413 for a body over MaxBody (refused unread when
// its Content-Length says so), 503 while webhookBodies other bodies are
// being read, and 400 for a malformed payload, recording nothing.
func (a *Autoscaler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/up", a.webhook("/up", a.signalMethods(), a.handleSignal(policy.Up)))
	mux.Handle("/down", a.webhook("/down", a.signalMethods(), a.handleSignal(policy.Down)))
	mux.Handle("/webhook", a.webhook("/webhook", []string{http.MethodPost, http.MethodPut}, a.handleAlerts))
	mux.HandleFunc("GET /status", a.handleStatus)
	mux.Handle("GET /{$}", a.statusPage()) // HTML status page (status.go)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "OK\n")
	})
	return mux
}

// webhookBodies is how many webhook bodies are read at once: the webhook
// endpoints hold at most webhookBodies × MaxBody bytes of bodies whatever
// arrives (Alertmanager and Grafana send one notification at a time per
// group).
const webhookBodies = 4

// webhookHeaderBytes bounds a request's header block (http.Server's
// MaxHeaderBytes; the default, 1 MiB, would let every connection that sends
// a line without an end hold that much).
const webhookHeaderBytes = 16 << 10

// webhookFunc handles a webhook whose body was read; it returns the result
// label for metrics. body is valid only until it returns.
type webhookFunc func(w http.ResponseWriter, r *http.Request, body []byte) string

// signalMethods are the methods /up and /down count as a signal: POST and
// PUT, and GET for the course's open contract (Config.OpenWebhooks). HEAD
// and OPTIONS never are: a browser or proxy sends them on its own.
func (a *Autoscaler) signalMethods() []string {
	if a.cfg.OpenWebhooks {
		return []string{http.MethodPost, http.MethodPut, http.MethodGet}
	}
	return []string{http.MethodPost, http.MethodPut}
}

// webhook wraps h with the method check, authentication, the body size
// limit and the webhook counter.
func (a *Autoscaler) webhook(endpoint string, methods []string, h webhookFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		result := a.serveWebhook(w, r, methods, h)
		a.metrics.webhooks.WithLabelValues(endpoint, result).Inc()
	})
}

func (a *Autoscaler) serveWebhook(w http.ResponseWriter, r *http.Request, methods []string, h webhookFunc) string {
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeError(w, http.StatusMethodNotAllowed, "use "+strings.Join(methods, " or ")+"; "+r.Method+" is never a signal")
		return hookBadMethod
	}
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="tidepool-autoscaler", charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong credentials")
		a.log.Warn("webhook rejected: unauthorized", "path", r.URL.Path, "remote", r.RemoteAddr)
		return hookUnauthorized
	}
	body, release, err := a.bodies.Read(w, r)
	defer release() // h decodes body in place: it holds the body's slot until it returns
	switch {
	case errors.Is(err, httpbody.ErrBusy):
		writeError(w, http.StatusServiceUnavailable, "too many webhook bodies being read, retry")
		a.log.Warn("webhook rejected: busy", "path", r.URL.Path, "remote", r.RemoteAddr)
		return hookBusy
	case errors.Is(err, httpbody.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", a.cfg.MaxBody))
		a.log.Warn("webhook rejected: body too large", "path", r.URL.Path, "remote", r.RemoteAddr, "limit", a.cfg.MaxBody)
		return hookTooLarge
	case err != nil:
		writeError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		return hookMalformed
	}
	return h(w, r, body)
}

// authorized checks the bearer token or basic auth credentials in constant
// time. Without credentials configured, webhooks are open: New allows that
// only on loopback or with OpenWebhooks (Config.CheckAccess).
func (a *Autoscaler) authorized(r *http.Request) bool {
	if a.cfg.AuthToken == "" && a.cfg.BasicAuth == "" {
		return true
	}
	if a.cfg.AuthToken != "" {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(tok, a.cfg.AuthToken) {
			return true
		}
	}
	if a.cfg.BasicAuth != "" {
		if user, pass, ok := r.BasicAuth(); ok && equal(user+":"+pass, a.cfg.BasicAuth) {
			return true
		}
	}
	return false
}

func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// signalReply is the JSON answer of the webhook endpoints.
type signalReply struct {
	Status  string         `json:"status"` // "recorded" or "ignored"
	Up      int            `json:"up"`     // signals recorded by this request
	Down    int            `json:"down"`
	Ignored int            `json:"ignored"`          // alerts ignored (resolved, no or bad direction)
	Reason  string         `json:"reason,omitempty"` // why ignored
	Pending policy.Pending `json:"pending"`
}

func (a *Autoscaler) handleSignal(dir policy.Direction) webhookFunc {
	return func(w http.ResponseWriter, r *http.Request, body []byte) string {
		reply := signalReply{Status: hookRecorded}
		if len(bytes.TrimSpace(body)) > 0 {
			p, err := parseAlertPayload(body)
			switch {
			case errors.Is(err, errNotAlertPayload):
				// Some other JSON document: a plain signal.
			case err != nil:
				writeError(w, http.StatusBadRequest, err.Error())
				a.log.Warn("webhook rejected: malformed payload", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
				return hookMalformed
			case len(p.firing()) == 0:
				why := p.notFiringReason()
				if why == "" {
					why = "no firing alert (resolved)"
				}
				reply = signalReply{Status: hookIgnored, Ignored: p.size(), Reason: why, Pending: a.signals.peek()}
				a.log.Info("signal ignored", "path", r.URL.Path, "reason", reply.Reason, "remote", r.RemoteAddr)
				writeJSON(w, http.StatusOK, reply)
				return hookIgnored
			}
		}
		reply.Pending = a.signals.add(dir, 1)
		if dir == policy.Up {
			reply.Up = 1
		} else {
			reply.Down = 1
		}
		a.signalRecorded(reply.Pending)
		a.log.Info("signal recorded", "direction", dir, "path", r.URL.Path, "method", r.Method, "remote", r.RemoteAddr,
			"pending_up", reply.Pending.Up, "pending_down", reply.Pending.Down)
		writeJSON(w, http.StatusOK, reply)
		return hookRecorded
	}
}

func (a *Autoscaler) handleAlerts(w http.ResponseWriter, r *http.Request, body []byte) string {
	p, err := parseAlertPayload(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		a.log.Warn("webhook rejected: malformed payload", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		return hookMalformed
	}
	firing := p.firing()
	reply := signalReply{Ignored: p.size() - len(firing)}
	var reasons []string
	if reply.Ignored > 0 {
		reasons = append(reasons, fmt.Sprintf("%d resolved", reply.Ignored))
	}
	for _, al := range firing {
		switch dir, raw := al.direction(a.cfg.DirectionLabel, a.cfg.DirectionAnnotation); {
		case dir == policy.Up:
			reply.Up++
		case dir == policy.Down:
			reply.Down++
		default:
			reply.Ignored++
			why := fmt.Sprintf("alert %q has no %q label or annotation", al.name(), a.cfg.DirectionLabel)
			if raw != "" {
				why = fmt.Sprintf("alert %q has %s=%q, want up or down", al.name(), a.cfg.DirectionLabel, raw)
			}
			reasons = append(reasons, why)
			a.log.Warn("alert ignored", "alert", al.name(), "reason", why, "receiver", p.Receiver)
		}
	}
	reply.Reason = strings.Join(reasons, "; ")
	if reply.Up+reply.Down == 0 {
		reply.Status, reply.Pending = hookIgnored, a.signals.peek()
		if len(firing) == 0 {
			reply.Reason = "no firing alert (resolved)"
			if why := p.notFiringReason(); why != "" {
				reply.Reason = why
			}
		}
		a.log.Info("signal ignored", "path", r.URL.Path, "reason", reply.Reason, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, reply)
		return hookIgnored
	}
	// Both directions under one lock: a tick must see a payload whole.
	reply.Status, reply.Pending = hookRecorded, a.signals.restore(policy.Pending{Up: reply.Up, Down: reply.Down})
	a.signalRecorded(reply.Pending)
	a.log.Info("signal recorded", "path", r.URL.Path, "up", reply.Up, "down", reply.Down, "ignored", reply.Ignored,
		"receiver", p.Receiver, "remote", r.RemoteAddr, "pending_up", reply.Pending.Up, "pending_down", reply.Pending.Down)
	writeJSON(w, http.StatusOK, reply)
	return hookRecorded
}

// signalRecorded publishes the new pending counts (metrics, state file).
func (a *Autoscaler) signalRecorded(p policy.Pending) {
	a.metrics.setPending(p)
	if err := a.saveState(); err != nil {
		a.log.Error("cannot save state", "err", err)
	}
}

func (a *Autoscaler) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Status())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
