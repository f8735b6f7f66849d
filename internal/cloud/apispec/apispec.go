// Package apispec checks HTTP exchanges with the local cloud against
// Exoscale's OpenAPI v2 specification (../shared/reference/exoscale-openapi-v2.yaml
// relative to the repository root), with github.com/getkin/kin-openapi.
//
// It is meant for tests: Spec.Handler wraps any handler serving the API
// (under a path containing /v2) and reports every exchange that does not
// conform:
//
//   - a request the handler accepted (status below 400) that the spec
//     rejects, or a path or method the spec does not have;
//   - a successful response whose status, content type or body does not
//     match the operation's response schema (types, formats, enums);
//   - a successful response missing a field that Exoscale always returns
//     (see Presence): the spec marks almost nothing required, but clients
//     dereference those fields;
//   - an error response that is not JSON {"message": "..."}.
//
// A request the handler rejected (status 400 and above) may violate the
// spec: rejecting it is right. Deviations lists the documented differences
// that are tolerated. The check knows nothing about the endpoints of the
// local cloud: every operation of the spec is checked the same way, so new
// endpoints are covered as soon as they are served.
//
// It owns the spec checks; only tests and cloudtest may import it, and it
// must not import any other tidepool package.
package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// RelPath is where the spec lives relative to the repository root.
const RelPath = "../shared/reference/exoscale-openapi-v2.yaml"

// ErrNotFound is returned (wrapped) by Locate when no spec file exists.
var ErrNotFound = errors.New("exoscale OpenAPI spec not found")

// Locate finds the spec for a test running in dir: it walks up from dir to
// the repository root (the first directory holding go.mod) and returns
// RelPath from there. A checkout whose root is not beside shared/ (a git
// worktree one level deeper) finds it at the first ancestor of the root that
// holds shared/reference/. The error wraps ErrNotFound when there is none.
func Locate(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("locate spec: %w", err)
	}
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("%w: no go.mod above %s", ErrNotFound, dir)
		}
		root = parent
	}
	want := filepath.Join(root, filepath.FromSlash(RelPath))
	for d := filepath.Dir(root); ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "reference", filepath.Base(RelPath))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("locate spec: %w", err)
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: %s (nor shared/reference/ in any parent)", ErrNotFound, want)
		}
	}
}

// Spec is a loaded specification with its router. It is safe for
// concurrent use.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Spec{}
)

// Load reads and resolves the spec at path. Specs are cached by path: the
// file is parsed once per process.
func Load(path string) (*Spec, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if s := loaded[path]; s != nil {
		return s, nil
	}
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load spec %s: %w", path, err)
	}
	// The spec's server is https://api-{zone}.exoscale.com/v2; match any host
	// on the path (Check hands the router the path from /v2 on).
	doc.Servers = openapi3.Servers{{URL: "/v2"}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("spec router: %w", err)
	}
	s := &Spec{doc: doc, router: r}
	loaded[path] = s
	return s, nil
}

// Operation names one operation of the spec: "GET /instance-pool/{id}".
type Operation string

// Operations returns every operation of the spec, sorted.
func (s *Spec) Operations() []Operation {
	var ops []Operation
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, Operation(method+" "+path))
		}
	}
	slices.Sort(ops)
	return ops
}

// OperationID returns the spec's operationId of op, or "".
func (s *Spec) OperationID(op Operation) string {
	method, path, _ := strings.Cut(string(op), " ")
	item := s.doc.Paths.Value(path)
	if item == nil {
		return ""
	}
	if o := item.GetOperation(method); o != nil {
		return o.OperationID
	}
	return ""
}

// Exchange is one request and its response, as the handler saw them.
type Exchange struct {
	Method string
	URL    *url.URL // path and query as received
	Header http.Header
	Body   []byte

	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte
}

// Mismatch is one way an exchange does not conform.
type Mismatch struct {
	Method, Path string // of the request
	Status       int    // of the response
	Operation    Operation
	Where        string // "request" or "response"
	Problem      string
}

func (m Mismatch) String() string {
	op := string(m.Operation)
	if op == "" {
		op = "no spec operation"
	}
	return fmt.Sprintf("%s %s -> %d (%s): %s: %s", m.Method, m.Path, m.Status, op, m.Where, m.Problem)
}

// apiPath returns the part of p from its /v2 segment on, or false when p
// has none (not an API request). Local zone endpoints such as
// /zone/de-fra-1/v2/instance thus map to the spec's /v2/instance.
func apiPath(p string) (string, bool) {
	if strings.HasPrefix(p, "/v2/") || p == "/v2" {
		return p, true
	}
	if i := strings.Index(p, "/v2/"); i >= 0 {
		return p[i:], true
	}
	if strings.HasSuffix(p, "/v2") {
		return "/v2", true
	}
	return "", false
}

// Check returns the mismatches of one exchange (none when it conforms) and
// the spec operation it matched ("" when none). Requests outside /v2 are
// not API requests and always conform.
func (s *Spec) Check(ctx context.Context, x Exchange) (Operation, []Mismatch) {
	p, ok := apiPath(x.URL.Path)
	if !ok {
		return "", nil
	}
	var out []Mismatch
	add := func(op Operation, where, format string, args ...any) {
		out = append(out, Mismatch{Method: x.Method, Path: x.URL.Path, Status: x.Status, Operation: op, Where: where, Problem: fmt.Sprintf(format, args...)})
	}
	if x.Status >= 400 {
		if problem := errorBodyProblem(x); problem != "" {
			add("", "response", "%s", problem)
		}
	}

	u := *x.URL
	u.Path, u.RawPath = p, ""
	if x.URL.RawPath != "" {
		if rp, ok := apiPath(x.URL.RawPath); ok {
			u.RawPath = rp
		}
	}
	req, err := http.NewRequestWithContext(ctx, x.Method, u.String(), bytes.NewReader(x.Body))
	if err != nil {
		add("", "request", "cannot rebuild request: %v", err)
		return "", out
	}
	req.Header = x.Header.Clone()
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		if x.Status < 400 {
			add("", "request", "served with status %d but the spec has no such operation: %v", x.Status, err)
		}
		return "", out
	}
	op := Operation(x.Method + " " + route.Path)

	opts := &openapi3filter.Options{
		MultiError:         true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, // the cloud checks signatures itself
		// The spec reuses resource schemas as references in request bodies
		// ({"instance-pool": {"id": ...}}) where id is marked readOnly, yet the
		// API needs it and egoscale sends it.
		ExcludeReadOnlyValidations: true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && x.Status < 400 {
		for _, problem := range problems(err, "request") {
			add(op, "request", "accepted although the spec rejects it: %s", problem)
		}
	}
	if x.Status >= 400 {
		return op, out
	}

	ropts := *opts
	ropts.IncludeResponseStatus = true
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Status,
		Header:                 x.ResponseHeader,
		Body:                   io.NopCloser(bytes.NewReader(x.ResponseBody)),
		Options:                &ropts,
	}
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		for _, problem := range problems(err, "response") {
			add(op, "response", "%s", problem)
		}
	}
	if schema := responseSchema(route.Operation, x.Status); schema != nil {
		var body any
		if err := json.Unmarshal(x.ResponseBody, &body); err == nil {
			var missing []string
			presence(schema, body, "", &missing)
			for _, m := range missing {
				add(op, "response", "%s", m)
			}
		}
	}
	return op, out
}

// errorBodyProblem checks an error response: JSON {"message": "..."}.
func errorBodyProblem(x Exchange) string {
	var body struct {
		Message *string `json:"message"`
	}
	if ct := x.ResponseHeader.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Sprintf("error response with content type %q, want application/json", ct)
	}
	if err := json.Unmarshal(x.ResponseBody, &body); err != nil || body.Message == nil {
		return fmt.Sprintf(`error response body %q is not {"message": "..."}`, x.ResponseBody)
	}
	return ""
}

func responseSchema(op *openapi3.Operation, status int) *openapi3.SchemaRef {
	r := op.Responses.Status(status)
	if r == nil || r.Value == nil {
		return nil
	}
	mt := r.Value.Content.Get("application/json")
	if mt == nil {
		return nil
	}
	return mt.Schema
}

// problems flattens a kin-openapi validation error into one line per
// schema violation, leaving out the tolerated deviations.
func problems(err error, where string) []string {
	var out []string
	var walk func(err error, ctx string)
	walk = func(err error, ctx string) {
		var me openapi3.MultiError
		var reqErr *openapi3filter.RequestError
		var respErr *openapi3filter.ResponseError
		var se *openapi3.SchemaError
		switch {
		case errors.As(err, &me) && isMulti(err):
			for _, e := range me {
				walk(e, ctx)
			}
		case errors.As(err, &reqErr) && reqErr.Err != nil && !isSchemaError(err):
			c := reqErr.Reason
			if reqErr.Parameter != nil {
				c = fmt.Sprintf("parameter %q in %s", reqErr.Parameter.Name, reqErr.Parameter.In)
			}
			walk(reqErr.Err, joinCtx(ctx, c))
		case errors.As(err, &respErr) && respErr.Err != nil && !isSchemaError(err):
			walk(respErr.Err, joinCtx(ctx, respErr.Reason))
		case errors.As(err, &se):
			ptr := "/" + strings.Join(se.JSONPointer(), "/")
			if tolerated(where, se.JSONPointer(), se.SchemaField) {
				return
			}
			out = append(out, joinCtx(ctx, fmt.Sprintf("at %s: %s (schema field %q)", ptr, se.Reason, se.SchemaField)))
		default:
			out = append(out, joinCtx(ctx, err.Error()))
		}
	}
	walk(err, "")
	return out
}

func isMulti(err error) bool {
	_, ok := err.(openapi3.MultiError)
	return ok
}

func isSchemaError(err error) bool {
	_, ok := err.(*openapi3.SchemaError)
	return ok
}

func joinCtx(ctx, s string) string {
	switch {
	case ctx == "" || strings.Contains(s, ctx):
		return s
	case s == "":
		return ctx
	}
	return ctx + ": " + s
}

// Deviation is a documented difference from the spec that the check
// tolerates.
type Deviation struct {
	Where       string   // "request", "response", or "" for both
	PathSuffix  []string // the JSON pointer of the value ends with these keys
	SchemaField string   // the violated keyword, e.g. "minimum"
	Why         string
}

// Deviations are the tolerated differences (docs/cloud.md lists them too).
var Deviations = []Deviation{
	{PathSuffix: []string{"healthcheck", "interval"}, SchemaField: "minimum",
		Why: "the local cloud accepts (and then reports) a health check interval down to 1 s (Exoscale: 5 s), so that tests and demos react quickly"},
	{PathSuffix: []string{"healthcheck", "timeout"}, SchemaField: "minimum",
		Why: "the local cloud accepts (and then reports) a health check timeout down to 1 s (Exoscale: 2 s), to go with the short interval"},
	{Where: "response", PathSuffix: []string{"size"}, SchemaField: "exclusiveMinimum",
		Why: "the spec's instance-pool says size > 0 although its own scale-instance-pool accepts 0; a pool scaled to 0 reports 0"},
	{Where: "request", PathSuffix: []string{"deploy-target"}, SchemaField: "nullable",
		Why: "egoscale v3's UpdateInstancePoolRequest always sends deploy-target, null when unset; Exoscale accepts it"},
	{Where: "request", PathSuffix: []string{"ssh-key"}, SchemaField: "nullable",
		Why: "egoscale v3's UpdateInstancePoolRequest always sends ssh-key, null when unset; Exoscale accepts it"},
	{Where: "request", PathSuffix: []string{"labels"}, SchemaField: "nullable",
		Why: "egoscale v3's UpdateInstanceRequest always sends labels, null when unset (labels unchanged); Exoscale accepts it"},
	{Where: "response", PathSuffix: []string{"rules"}, SchemaField: "writeOnly",
		Why: "the spec marks security-group rules writeOnly, yet Exoscale returns them and egoscale v2 and v3, the CLI and the Terraform provider all read them"},
}

func tolerated(where string, ptr []string, field string) bool {
	for _, d := range Deviations {
		if (d.Where == "" || d.Where == where) && d.SchemaField == field && len(ptr) >= len(d.PathSuffix) &&
			slices.Equal(ptr[len(ptr)-len(d.PathSuffix):], d.PathSuffix) {
			return true
		}
	}
	return false
}

// Presence lists, per component schema, the fields that Exoscale returns in
// every response carrying that object, although the spec does not mark them
// required; clients read them without checking (the CLI's
// `compute instance show` dereferences secureboot-enabled and tpm-enabled).
// On top of these, every boolean property of an object must be present:
// egoscale maps each to a *bool. An object holding nothing but "id" is a
// reference to another resource and is not checked.
var Presence = map[string][]string{
	"instance":                          {"id", "name", "state", "created-at", "instance-type", "template", "disk-size", "public-ip-assignment", "mac-address"},
	"instance-pool":                     {"id", "name", "state", "size", "instance-type", "template", "instance-prefix", "disk-size", "instances", "public-ip-assignment", "min-available"},
	"load-balancer":                     {"id", "name", "state", "ip", "created-at", "services"},
	"load-balancer-service":             {"id", "name", "state", "protocol", "strategy", "port", "target-port", "instance-pool", "healthcheck", "healthcheck-status"},
	"load-balancer-service-healthcheck": {"mode", "port", "interval", "timeout", "retries"},
	"load-balancer-server-status":       {"public-ip", "status"},
	"operation":                         {"id", "state", "reference"},
	"zone":                              {"name", "api-endpoint"},
	"instance-type":                     {"id", "family", "size", "cpus", "memory", "authorized", "zones"},
	"template":                          {"id", "name", "visibility", "boot-mode", "created-at", "zones"},
	"manager":                           {"id", "type"},
	// Records-only resources: identities, and what egoscale v2 dereferences
	// (an elastic IP's ip, a role's policy, a lease's ip).
	"security-group":        {"id", "name"},
	"security-group-rule":   {"id", "flow-direction", "protocol"},
	"iam-role":              {"id", "name", "policy"},
	"iam-api-key":           {"name", "key", "role-id"},
	"iam-api-key-created":   {"name", "key", "secret", "role-id"},
	"ssh-key":               {"name", "fingerprint"},
	"anti-affinity-group":   {"id", "name"},
	"private-network":       {"id", "name"},
	"private-network-lease": {"ip", "instance-id"},
	"elastic-ip":            {"id", "ip"},
	"reverse-dns-record":    {"domain-name"},
}

// presence walks a response value along its schema and appends a line for
// every field that Presence (or the boolean rule) wants and v lacks.
func presence(ref *openapi3.SchemaRef, v any, at string, missing *[]string) {
	if ref == nil || ref.Value == nil {
		return
	}
	s := ref.Value
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["id"]; ok && len(v) == 1 {
			return // a reference
		}
		name := ref.Ref[strings.LastIndex(ref.Ref, "/")+1:]
		var want []string
		if ref.Ref != "" {
			want = append(want, Presence[name]...)
		}
		for prop, ps := range s.Properties {
			if ps.Value != nil && ps.Value.Type.Is(openapi3.TypeBoolean) && !ps.Value.WriteOnly {
				want = append(want, prop)
			}
		}
		sort.Strings(want)
		for _, f := range slices.Compact(want) {
			if _, ok := v[f]; !ok {
				what := "object"
				if name != "" {
					what = name
				}
				*missing = append(*missing, fmt.Sprintf("at %s/: %s lacks %q, which Exoscale always returns", at, what, f))
			}
		}
		for prop, pv := range v {
			presence(s.Properties[prop], pv, at+"/"+prop, missing)
		}
	case []any:
		for i, item := range v {
			presence(s.Items, item, fmt.Sprintf("%s/%d", at, i), missing)
		}
	}
}
