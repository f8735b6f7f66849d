package cloudtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Fault is what the test cloud does with one API request instead of just
// answering it (see Options.Fault). Its zero value answers normally.
type Fault struct {
	// Delay holds the request this long before anything else (or until
	// the client gives up; then nothing is answered).
	Delay time.Duration
	// Status, when not 0, is the answer's status instead of the cloud's.
	Status int
	// Body, when not "", is the answer's body instead of the cloud's (a
	// truncated JSON document, say); with Status but no Body the body is
	// an Exoscale-style JSON error message.
	Body string
	// ContentType of an injected answer; "" means application/json.
	ContentType string
	// After lets the request reach the cloud first, which takes effect,
	// and then answers Status and Body: a response lost after the change.
	After bool
}

// injects reports whether the fault replaces the cloud's answer.
func (f Fault) injects() bool { return f.Status != 0 || f.Body != "" }

// withFaults wraps the API handler with fault, which may be nil (no faults).
func withFaults(next http.Handler, fault func(*http.Request) (Fault, bool)) http.Handler {
	if fault == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := fault(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if !f.injects() {
			next.ServeHTTP(w, r)
			return
		}
		if f.After {
			next.ServeHTTP(httptest.NewRecorder(), r) // the answer is lost
		}
		status, body, ctype := f.Status, f.Body, f.ContentType
		if status == 0 {
			status = http.StatusOK
		}
		if body == "" {
			body = `{"message":"fault injected by cloudtest"}`
		}
		if ctype == "" {
			ctype = "application/json"
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		if _, err := io.WriteString(w, body); err != nil {
			return // the client went away: nothing to answer
		}
	})
}
