package apispec

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"sync"
)

// Coverage counts the spec operations that conforming exchanges with a
// status below 400 exercised. The zero value is ready; it is safe for
// concurrent use.
type Coverage struct {
	mu   sync.Mutex
	seen map[Operation]int
}

func (c *Coverage) add(op Operation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[Operation]int{}
	}
	c.seen[op]++
}

// Operations returns the operations exercised so far, sorted.
func (c *Coverage) Operations() []Operation {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := make([]Operation, 0, len(c.seen))
	for op := range c.seen {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

// Handler returns h checked against the spec: every exchange goes through
// Check once h has answered, and report is called for each mismatch (from
// the serving goroutine; report must be safe for concurrent use).
// Conforming successful exchanges are counted in cov when it is not nil.
// The request body is read fully before h runs (h sees the same bytes) and
// the response is buffered while h writes it, then sent unchanged.
func (s *Spec) Handler(h http.Handler, cov *Coverage, report func(Mismatch)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, `{"message": "read request body"}`, http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		x := Exchange{Method: r.Method, URL: r.URL, Header: r.Header.Clone(), Body: body}
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())

		x.Status, x.ResponseHeader, x.ResponseBody = rec.status, rec.header, rec.body.Bytes()
		op, ms := s.Check(r.Context(), x)
		for _, m := range ms {
			report(m)
		}
		if cov != nil && op != "" && len(ms) == 0 && x.Status < 400 {
			cov.add(op)
		}
	})
}

// recorder buffers a response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
