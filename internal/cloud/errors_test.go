package cloud_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"

	"tidepool/internal/cloud/cloudtest"
)

// signedRequest builds a request signed like egoscale does, with the given
// expiry, independently of the cloud's verifier.
func signedRequest(t *testing.T, method, url, body, key, secret string, expires time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	msg := method + " " + req.URL.EscapedPath() + "\n" + body + "\n\n\n" + exp
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	req.Header.Set("Authorization", "EXO2-HMAC-SHA256 credential="+key+",expires="+exp+",signature="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// apiStatus sends req and returns the status and the JSON error message.
func apiStatus(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Message string `json:"message"`
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", req.Method, req.URL.Path, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Errorf("%s %s: body %q is not JSON: %v", req.Method, req.URL.Path, b, err)
	}
	return resp.StatusCode, e.Message
}

// TestAPIErrors checks that bad credentials, unknown IDs and bad input get
// the right status and an Exoscale-style JSON error, through the egoscale
// client and through raw requests.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := env.CreatePool(t, 1)
	unknown := v3.UUID("0b7e2a3c-1111-4222-8333-944455556666")
	creds := func(key, secret string) *v3.Client {
		c, err := v3.NewClient(credentials.NewStaticCredentials(key, secret), v3.ClientOptWithEndpoint(v3.Endpoint(env.Endpoint)),
			v3.ClientOptWithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	malformed := env.Client.WithRequestInterceptor(func(_ context.Context, r *http.Request) error {
		r.Body = io.NopCloser(strings.NewReader(`{"size": 2`))
		return nil
	})
	micro, ubuntu := microID(t, env.Client), ubuntuID(t, env.Client)
	createPool := func(size int64, typ v3.UUID) error {
		_, err := env.Client.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
			Name: "p-" + strconv.FormatInt(size, 10), Size: size, DiskSize: 10,
			InstanceType: &v3.InstanceType{ID: typ}, Template: &v3.Template{ID: ubuntu},
		})
		return err
	}

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"wrong secret", func() error { _, err := creds(env.Key, "wrong").ListInstancePools(ctx); return err }, v3.ErrForbidden},
		{"wrong key", func() error { _, err := creds("EXOnobody", env.Secret).ListInstancePools(ctx); return err }, v3.ErrForbidden},
		{"unknown pool", func() error { _, err := env.Client.GetInstancePool(ctx, unknown); return err }, v3.ErrNotFound},
		{"scale unknown pool", func() error {
			_, err := env.Client.ScaleInstancePool(ctx, unknown, v3.ScaleInstancePoolRequest{Size: 1})
			return err
		}, v3.ErrNotFound},
		{"unknown instance", func() error { _, err := env.Client.GetInstance(ctx, unknown); return err }, v3.ErrNotFound},
		{"delete unknown instance", func() error { _, err := env.Client.DeleteInstance(ctx, unknown); return err }, v3.ErrNotFound},
		{"unknown operation", func() error { _, err := env.Client.GetOperation(ctx, unknown); return err }, v3.ErrNotFound},
		{"unknown load balancer", func() error { _, err := env.Client.GetLoadBalancer(ctx, unknown); return err }, v3.ErrNotFound},
		{"unknown instance type", func() error { _, err := env.Client.GetInstanceType(ctx, unknown); return err }, v3.ErrNotFound},
		{"unknown template", func() error { _, err := env.Client.GetTemplate(ctx, unknown); return err }, v3.ErrNotFound},
		{"scale above max", func() error {
			_, err := env.Client.ScaleInstancePool(ctx, pool, v3.ScaleInstancePoolRequest{Size: 21})
			return err
		}, v3.ErrBadRequest},
		{"scale negative", func() error {
			_, err := env.Client.ScaleInstancePool(ctx, pool, v3.ScaleInstancePoolRequest{Size: -1})
			return err
		}, v3.ErrBadRequest},
		{"scale malformed JSON", func() error {
			_, err := malformed.ScaleInstancePool(ctx, pool, v3.ScaleInstancePoolRequest{Size: 2})
			return err
		}, v3.ErrBadRequest},
		{"create size 0", func() error { return createPool(0, micro) }, v3.ErrBadRequest},
		{"create size above max", func() error { return createPool(50, micro) }, v3.ErrBadRequest},
		{"create unknown instance type", func() error { return createPool(1, unknown) }, v3.ErrBadRequest},
		{"evict a non-member", func() error {
			_, err := env.Client.EvictInstancePoolMembers(ctx, pool, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{unknown}})
			return err
		}, v3.ErrBadRequest},
		{"evict nobody", func() error {
			_, err := env.Client.EvictInstancePoolMembers(ctx, pool, v3.EvictInstancePoolMembersRequest{})
			return err
		}, v3.ErrBadRequest},
		{"udp service", func() error {
			op, err := env.Client.CreateLoadBalancer(ctx, v3.CreateLoadBalancerRequest{Name: "lb"})
			if err != nil {
				return err
			}
			_, err = env.Client.AddServiceToLoadBalancer(ctx, op.Reference.ID, v3.AddServiceToLoadBalancerRequest{
				Name: "s", Port: 80, TargetPort: 8080, Protocol: "udp", Strategy: "round-robin",
				InstancePool: &v3.InstancePool{ID: pool}, Healthcheck: &v3.LoadBalancerServiceHealthcheck{Mode: "tcp"},
			})
			return err
		}, v3.ErrBadRequest},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			continue
		}
		var apiErr *v3.APIError
		if !errors.As(err, &apiErr) || apiErr.Message == "" {
			t.Errorf("%s: err = %v, want an APIError with a message", tt.name, err)
		}
	}
	if p, err := env.Client.GetInstancePool(ctx, pool); err != nil || p.Size != 1 {
		t.Errorf("pool after rejected requests: %+v, %v; want size 1 unchanged", p, err)
	}

	// Raw requests: expired or unsigned requests, unknown endpoints.
	now := time.Now()
	raw := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantMsg    string
	}{
		{"expired", signedRequest(t, "GET", env.Endpoint+"/instance-pool", "", env.Key, env.Secret, now.Add(-time.Minute)), 403, "expired"},
		{"valid raw", signedRequest(t, "GET", env.Endpoint+"/instance-pool", "", env.Key, env.Secret, now.Add(time.Minute)), 200, ""},
		{"unsigned", mustRequest(t, "GET", env.Endpoint+"/instance-pool", ""), 403, "Authorization"},
		{"body does not match signature", func() *http.Request {
			r := signedRequest(t, "PUT", env.Endpoint+"/instance-pool/"+string(pool)+":scale", `{"size":1}`, env.Key, env.Secret, now.Add(time.Minute))
			r.Body = io.NopCloser(strings.NewReader(`{"size":9}`))
			r.ContentLength = 10
			return r
		}(), 403, "signature"},
		{"trailing JSON", signedRequest(t, "PUT", env.Endpoint+"/instance-pool/"+string(pool)+":scale", `{"size":1} {}`, env.Key, env.Secret, now.Add(time.Minute)), 400, "trailing"},
		{"wrong type", signedRequest(t, "PUT", env.Endpoint+"/instance-pool/"+string(pool)+":scale", `{"size":"two"}`, env.Key, env.Secret, now.Add(time.Minute)), 400, "malformed JSON"},
		{"no body", signedRequest(t, "PUT", env.Endpoint+"/instance-pool/"+string(pool)+":scale", ``, env.Key, env.Secret, now.Add(time.Minute)), 400, "body required"},
		{"unknown action", signedRequest(t, "PUT", env.Endpoint+"/instance-pool/"+string(pool)+":explode", `{}`, env.Key, env.Secret, now.Add(time.Minute)), 404, "no such endpoint"},
		{"unknown endpoint", signedRequest(t, "GET", env.Endpoint+"/sks-cluster", "", env.Key, env.Secret, now.Add(time.Minute)), 404, "no such endpoint"},
	}
	for _, tt := range raw {
		status, msg := apiStatus(t, tt.req)
		if status != tt.wantStatus || !strings.Contains(msg, tt.wantMsg) {
			t.Errorf("%s: %d %q, want %d with a message containing %q", tt.name, status, msg, tt.wantStatus, tt.wantMsg)
		}
	}

	// GET /zone is public and advertises this endpoint.
	got, err := creds("EXOnobody", "nothing").GetZoneAPIEndpoint(ctx, v3.ZoneName(env.Zone))
	if err != nil || string(got) != env.Endpoint {
		t.Errorf("GetZoneAPIEndpoint(%s) = %q, %v; want %q", env.Zone, got, err, env.Endpoint)
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
