package cloud

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"
)

// capture is an http.RoundTripper that records requests and answers 200 {}.
type capture struct {
	reqs   []*http.Request
	bodies [][]byte
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		body = b
	}
	c.reqs = append(c.reqs, r)
	c.bodies = append(c.bodies, body)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}, Request: r}, nil
}

// TestVerifyRequestAcceptsEgoscaleSignatures signs real requests with the
// egoscale v3 client (query arguments, bodies, colon paths) and checks that
// verifyRequest accepts them, and rejects them with the wrong secret.
func TestVerifyRequestAcceptsEgoscaleSignatures(t *testing.T) {
	const key, secret = "EXOkey", "s3cret"
	rt := &capture{}
	client, err := v3.NewClient(credentials.NewStaticCredentials(key, secret),
		v3.ClientOptWithEndpoint("http://127.0.0.1:1/v2"),
		v3.ClientOptWithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool := v3.UUID("6d2f3ab6-0000-4000-8000-000000000001")
	calls := []func() error{
		func() error { _, err := client.ListInstancePools(ctx); return err },
		func() error {
			_, err := client.ListInstances(ctx, v3.ListInstancesWithManagerID(pool), v3.ListInstancesWithManagerType("instance-pool"))
			return err
		},
		func() error {
			_, err := client.ScaleInstancePool(ctx, pool, v3.ScaleInstancePoolRequest{Size: 3})
			return err
		},
		func() error {
			_, err := client.EvictInstancePoolMembers(ctx, pool, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{"a", "b"}})
			return err
		},
		func() error { _, err := client.DeleteInstance(ctx, pool); return err },
	}
	for _, call := range calls {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for i, r := range rt.reqs {
		sr := signedRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Query: r.URL.Query(), Body: rt.bodies[i]}
		if got, err := verifyRequest(sr, r.Header.Get("Authorization"), map[string]string{key: secret}, now); err != nil || got != key {
			t.Errorf("%s %s: verifyRequest = %q, %v; want %q, nil", r.Method, r.URL, got, err, key)
		}
		if _, err := verifyRequest(sr, r.Header.Get("Authorization"), map[string]string{key: "other"}, now); !errors.Is(err, errAuth) {
			t.Errorf("%s %s with the wrong secret: err = %v, want errAuth", r.Method, r.URL, err)
		}
	}
	if len(rt.reqs) != len(calls) {
		t.Fatalf("captured %d requests, want %d", len(rt.reqs), len(calls))
	}
}

func TestVerifyRequestRejects(t *testing.T) {
	const key, secret = "EXOkey", "s3cret"
	secrets := map[string]string{key: secret}
	now := time.Unix(1_700_000_000, 0)
	req := signedRequest{Method: "GET", EscapedPath: "/v2/instance", Query: map[string][]string{"manager-id": {"p1"}}, Body: nil}
	header := func(k, sec string, args string, expires int64, r signedRequest) string {
		var names []string
		if args != "" {
			names = strings.Split(args, ";")
		}
		msg, err := signatureMessage(r, names, expires)
		if err != nil {
			t.Fatal(err)
		}
		h := "EXO2-HMAC-SHA256 credential=" + k
		if args != "" {
			h += ",signed-query-args=" + args
		}
		return h + ",expires=" + strconv.FormatInt(expires, 10) + ",signature=" + base64.StdEncoding.EncodeToString(sign(sec, msg))
	}
	later := now.Unix() + 600
	tampered := req
	tampered.Query = map[string][]string{"manager-id": {"p2"}}
	withZ := req
	withZ.Query = map[string][]string{"manager-id": {"p1"}, "zzz": {"1"}}
	tests := []struct {
		name    string
		header  string
		req     signedRequest
		wantErr string // "" = accepted
	}{
		{"valid", header(key, secret, "manager-id", later, req), req, ""},
		{"missing header", "", req, "missing Authorization"},
		{"other scheme", "Basic abc", req, "scheme"},
		{"unknown key", header("EXOother", secret, "manager-id", later, req), req, "unknown API key"},
		{"wrong secret", header(key, "nope", "manager-id", later, req), req, "signature mismatch"},
		{"expired", header(key, secret, "manager-id", now.Unix()-1, req), req, "expired"},
		{"tampered query", header(key, secret, "manager-id", later, req), tampered, "signature mismatch"},
		{"signed arg missing", header(key, secret, "manager-id;zzz", later, withZ), req, "exactly one value"},
		{"unsigned query argument", header(key, secret, "manager-id", later, req), withZ, "not covered by the signature: zzz"},
		{"no query argument signed", header(key, secret, "", later, signedRequest{Method: "GET", EscapedPath: "/v2/instance"}), req, "not covered by the signature: manager-id"},
		{"expires at the bound", header(key, secret, "manager-id", now.Add(MaxExpiresAhead).Unix(), req), req, ""},
		{"expires beyond the bound", header(key, secret, "manager-id", now.Add(MaxExpiresAhead).Unix()+1, req), req, "ahead"},
		{"expires in a year", header(key, secret, "manager-id", now.AddDate(1, 0, 0).Unix(), req), req, "ahead"},
		{"bad expires", "EXO2-HMAC-SHA256 credential=EXOkey,expires=soon,signature=AA==", req, "malformed expires"},
		{"bad signature encoding", "EXO2-HMAC-SHA256 credential=EXOkey,expires=1,signature=!!", req, "malformed signature"},
		{"no signature", "EXO2-HMAC-SHA256 credential=EXOkey,expires=1", req, "missing signature"},
	}
	for _, tt := range tests {
		_, err := verifyRequest(tt.req, tt.header, secrets, now)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: err = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !errors.Is(err, errAuth) || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want errAuth containing %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestAuthenticateMiddleware checks authenticate's contract with the
// handler it guards: a signed request reaches it with the signing key in
// its context (requestAPIKey) and the verified body in r.Body; a forged one
// never reaches it.
func TestAuthenticateMiddleware(t *testing.T) {
	const key, secret = "EXOmiddleware", "s3cret"
	c, err := New(Config{Key: key, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	var gotKey, gotBody string
	reached := 0
	h := c.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		gotKey = requestAPIKey(r.Context())
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
	}))
	body := `{"name":"lb"}`
	exp := time.Now().Add(time.Minute).Unix()
	sr := signedRequest{Method: "POST", EscapedPath: "/v2/load-balancer", Body: []byte(body)}
	msg, err := signatureMessage(sr, nil, exp)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, secret string
		wantReached  int
	}{{"signed", secret, 1}, {"forged", "other", 1}} {
		req := httptest.NewRequest("POST", "/v2/load-balancer", strings.NewReader(body))
		req.Header.Set("Authorization", "EXO2-HMAC-SHA256 credential="+key+",expires="+strconv.FormatInt(exp, 10)+
			",signature="+base64.StdEncoding.EncodeToString(sign(tt.secret, msg)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if reached != tt.wantReached {
			t.Errorf("%s: handler reached %d times, want %d (status %d)", tt.name, reached, tt.wantReached, rec.Code)
		}
	}
	if gotKey != key || gotBody != body {
		t.Errorf("handler saw key %q and body %q, want %q and %q", gotKey, gotBody, key, body)
	}
	if requestAPIKey(context.Background()) != "" {
		t.Error("requestAPIKey of an unauthenticated context is not empty")
	}
}
