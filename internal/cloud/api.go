package cloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

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

// route is one endpoint of the API.
type route struct {
	method string
	// path is the spec's path under /v2, e.g. "/instance-pool/{id}" or
	// "/instance-pool/{id}:scale": an action after the last wildcard is
	// dispatched by Handler, and the handler sees the wildcard without it.
	// A wildcard's dashes become underscores for net/http: the handler of
	// {service-id} reads r.PathValue("service_id").
	path string
	f    apiFunc
}

// routes lists every endpoint. Each resource contributes its own list
// (catalogRoutes, poolRoutes, ...): a new resource adds its function here.
func (c *Cloud) routes() []route {
	return slices.Concat(c.catalogRoutes(), c.poolRoutes(), c.nlbRoutes(), c.operationRoutes(), c.resourceRoutes())
}

// Routes returns the served endpoints as "METHOD /path", with the spec's
// paths (under /v2), sorted: for tests that check every one conforms.
func Routes() []string {
	var out []string
	for _, rt := range (&Cloud{}).routes() { // handlers are only named, never called
		out = append(out, rt.method+" "+rt.path)
	}
	slices.Sort(out)
	return out
}

func (c *Cloud) catalogRoutes() []route {
	return []route{
		{"GET", "/zone", c.listZones},
		{"GET", "/instance-type", c.listInstanceTypes},
		{"GET", "/instance-type/{id}", c.getInstanceType},
		{"GET", "/template", c.listTemplates},
		{"GET", "/template/{id}", c.getTemplate},
	}
}

func (c *Cloud) operationRoutes() []route {
	return []route{{"GET", "/operation/{id}", c.getOperation}}
}

// mux registers routes on a ServeMux under /v2. Routes sharing a path but
// for an action (":scale") share one pattern and are dispatched on the
// action.
func (c *Cloud) mux() *http.ServeMux {
	type group struct {
		wildcard string
		actions  map[string]apiFunc
	}
	groups := map[string]*group{}
	var order []string
	for _, rt := range c.routes() {
		base, action := rt.path, ""
		if i := strings.LastIndex(rt.path, "}:"); i >= 0 {
			base, action = rt.path[:i+1], rt.path[i+2:]
		}
		base = muxWildcards(base)
		pattern := rt.method + " /v2" + base
		g := groups[pattern]
		if g == nil {
			g = &group{actions: map[string]apiFunc{}}
			if i := strings.LastIndex(base, "{"); i >= 0 && strings.HasSuffix(base, "}") {
				g.wildcard = base[i+1 : len(base)-1]
			}
			groups[pattern] = g
			order = append(order, pattern)
		}
		g.actions[action] = rt.f
	}
	m := http.NewServeMux()
	for _, pattern := range order {
		g := groups[pattern]
		m.Handle(pattern, c.serve(func(r *http.Request) (any, error) {
			action := ""
			if g.wildcard != "" {
				v, a, _ := strings.Cut(r.PathValue(g.wildcard), ":")
				r.SetPathValue(g.wildcard, v)
				action = a
			}
			f := g.actions[action]
			if f == nil {
				return nil, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
			}
			return f(r)
		}))
	}
	m.Handle("/", c.serve(func(r *http.Request) (any, error) {
		return nil, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return m
}

// muxWildcards turns the dashes inside {wildcards} of a spec path into
// underscores, as net/http wants identifiers.
func muxWildcards(path string) string {
	b := []byte(path)
	in := false
	for i, ch := range b {
		switch {
		case ch == '{':
			in = true
		case ch == '}':
			in = false
		case in && ch == '-':
			b[i] = '_'
		}
	}
	return string(b)
}

// Handler returns the HTTP handler serving the API: under /v2 for
// Config.Zone, under /zone/<name>/v2 for every zone of Zones (also for a
// Host of api-<name>.exoscale.com, see requestZone); an unknown zone is 404.
// GET /v2/zone is public (egoscale does not sign it); every other endpoint
// requires a request signed (EXO2-HMAC-SHA256, over the path as sent) with
// the configured key or an API key created through POST /api-key, else 403
// (authenticate, the one place requests are authenticated); an API key's
// role's policy must then allow the operation (authorize), else 403.
func (c *Cloud) Handler() http.Handler {
	api := c.mux()
	// inZone serves r in its zone, on the path under /v2; it runs after
	// authentication, which checks the path as sent.
	inZone := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zone, path, rawPath, _ := c.requestZone(r)
		r = withZone(r, zone)
		r.URL.Path, r.URL.RawPath = path, rawPath
		if _, pattern := api.Handler(r); pattern != "/" && pattern != "" { // unknown endpoints answer 404
			if key := requestAPIKey(r.Context()); key != "" {
				if err := c.authorize(r, key); err != nil {
					c.log.Info("request forbidden", "method", r.Method, "path", r.URL.Path, "key", key, "err", err)
					writeError(w, errorf(http.StatusForbidden, "%v", err))
					return
				}
			}
		}
		api.ServeHTTP(w, r)
	})
	signed := c.authenticate(inZone)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zone, path, _, ok := c.requestZone(r)
		switch {
		case !ok:
			writeError(w, errorf(http.StatusNotFound, "zone %q not found", zone))
		case r.Method == http.MethodGet && path == "/v2/zone":
			inZone.ServeHTTP(w, r)
		default:
			signed.ServeHTTP(w, r)
		}
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
	return map[string][]apiZone{"zones": c.zoneEndpoints(r)}, nil
}

func (c *Cloud) listInstanceTypes(*http.Request) (any, error) {
	out := []*apiInstanceType{}
	for _, t := range instanceTypes {
		out = append(out, t.api())
	}
	return map[string]any{"instance-types": out}, nil
}

func (c *Cloud) getInstanceType(r *http.Request) (any, error) {
	t, ok := findInstanceType(r.PathValue("id"))
	if !ok {
		return nil, notFound("instance type", r.PathValue("id"))
	}
	return t.api(), nil
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
		out = append(out, t.api())
	}
	return map[string]any{"templates": out}, nil
}

func (c *Cloud) getTemplate(r *http.Request) (any, error) {
	t, ok := findTemplate(r.PathValue("id"))
	if !ok {
		return nil, notFound("template", r.PathValue("id"))
	}
	return t.api(), nil
}

func (c *Cloud) getOperation(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	op := c.ops[r.PathValue("id")]
	if op == nil || op.zone != zoneOf(r) {
		return nil, notFound("operation", r.PathValue("id"))
	}
	c.evalOpLocked(op, c.now())
	return op.api(), nil
}
