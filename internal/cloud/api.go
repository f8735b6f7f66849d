package cloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

// httpError is an API error answered as {"message": ...} with status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) error {
	return errorf(http.StatusNotFound, "%s %q not found", kind, id)
}

// apiFunc handles one endpoint: it returns the JSON response or an error.
type apiFunc func(r *http.Request) (any, error)

// Handler returns the HTTP handler serving the API under /v2. GET /v2/zone is
// public (egoscale does not sign it); every other endpoint requires a request
// signed with the configured key (EXO2-HMAC-SHA256), else 403.
func (c *Cloud) Handler() http.Handler {
	api := http.NewServeMux()
	route := func(pattern string, f apiFunc) { api.Handle(pattern, c.serve(f)) }

	route("GET /v2/zone", c.listZones)
	route("GET /v2/instance-type", c.listInstanceTypes)
	route("GET /v2/instance-type/{id}", c.getInstanceType)
	route("GET /v2/template", c.listTemplates)
	route("GET /v2/template/{id}", c.getTemplate)

	route("GET /v2/instance-pool", c.listPools)
	route("POST /v2/instance-pool", c.createPool)
	route("GET /v2/instance-pool/{id}", c.getPool)
	route("PUT /v2/instance-pool/{id}", c.putPool) // also {id}:scale and {id}:evict
	route("DELETE /v2/instance-pool/{id}", c.deletePool)

	route("GET /v2/instance", c.listInstances)
	route("GET /v2/instance/{id}", c.getInstance)
	route("PUT /v2/instance/{id}", c.updateInstance)
	route("DELETE /v2/instance/{id}", c.deleteInstance)

	// The spec's path is /load-balancer; /network-load-balancer is an alias.
	for _, base := range []string{"/v2/load-balancer", "/v2/network-load-balancer"} {
		route("GET "+base, c.listNLBs)
		route("POST "+base, c.createNLB)
		route("GET "+base+"/{id}", c.getNLB)
		route("PUT "+base+"/{id}", c.updateNLB)
		route("DELETE "+base+"/{id}", c.deleteNLB)
		route("POST "+base+"/{id}/service", c.addService)
		route("GET "+base+"/{id}/service/{sid}", c.getService)
		route("PUT "+base+"/{id}/service/{sid}", c.updateService)
		route("DELETE "+base+"/{id}/service/{sid}", c.deleteService)
	}

	route("GET /v2/operation/{id}", c.getOperation)
	route("/", func(r *http.Request) (any, error) {
		return nil, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v2/zone" {
			api.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, errorf(http.StatusRequestEntityTooLarge, "request body: %v", err))
			return
		}
		sr := signedRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Query: r.URL.Query(), Body: body}
		if _, err := verifyRequest(sr, r.Header.Get("Authorization"), c.secrets, c.now()); err != nil {
			c.log.Info("request rejected", "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, errorf(http.StatusForbidden, "%v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		api.ServeHTTP(w, r)
	})
}

func (c *Cloud) serve(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				c.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Message: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	writeJSON(w, status, apiError{Message: err.Error()})
}

// decodeBody decodes the JSON request body into v: exactly one JSON value.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "request body required")
		}
		return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "malformed JSON body: trailing data after the JSON value")
	}
	return nil
}

func (c *Cloud) listZones(r *http.Request) (any, error) {
	endpoint := c.cfg.PublicEndpoint
	if endpoint == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		endpoint = scheme + "://" + r.Host + "/v2"
	}
	return map[string][]apiZone{"zones": {{Name: c.cfg.Zone, APIEndpoint: endpoint}}}, nil
}

func (c *Cloud) listInstanceTypes(*http.Request) (any, error) {
	out := []*apiInstanceType{}
	for _, t := range instanceTypes {
		out = append(out, t.api(c.cfg.Zone))
	}
	return map[string]any{"instance-types": out}, nil
}

func (c *Cloud) getInstanceType(r *http.Request) (any, error) {
	t, ok := findInstanceType(r.PathValue("id"))
	if !ok {
		return nil, notFound("instance type", r.PathValue("id"))
	}
	return t.api(c.cfg.Zone), nil
}

func (c *Cloud) listTemplates(r *http.Request) (any, error) {
	q := r.URL.Query()
	out := []*apiTemplate{}
	for _, t := range templates {
		if v := q.Get("visibility"); v != "" && v != "public" {
			continue
		}
		if f := q.Get("family"); f != "" && f != t.Family {
			continue
		}
		out = append(out, t.api(c.cfg.Zone))
	}
	return map[string]any{"templates": out}, nil
}

func (c *Cloud) getTemplate(r *http.Request) (any, error) {
	t, ok := findTemplate(r.PathValue("id"))
	if !ok {
		return nil, notFound("template", r.PathValue("id"))
	}
	return t.api(c.cfg.Zone), nil
}

func (c *Cloud) getOperation(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	op := c.ops[r.PathValue("id")]
	if op == nil {
		return nil, notFound("operation", r.PathValue("id"))
	}
	c.evalOpLocked(op, c.now())
	return op.api(), nil
}
