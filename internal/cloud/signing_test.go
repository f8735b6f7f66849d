package cloud_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
)

// signedWith builds a request signed like egoscale does, but over only the
// query arguments named in args (in that order), with the given expiry.
func signedWith(t *testing.T, method, url, body, key, secret string, args []string, expires time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var values string
	for _, a := range args {
		values += req.URL.Query().Get(a)
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + " " + req.URL.EscapedPath() + "\n" + body + "\n" + values + "\n\n" + exp))
	h := "EXO2-HMAC-SHA256 credential=" + key
	if len(args) > 0 {
		h += ",signed-query-args=" + strings.Join(args, ";")
	}
	req.Header.Set("Authorization", h+",expires="+exp+",signature="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestSigningGaps checks the signature rules that make a captured or
// forged request useless: a query argument left out of signed-query-args
// is refused, never applied (it would change what a signed request does);
// expires may lie at most cloud.MaxExpiresAhead ahead (egoscale signs 10
// minutes ahead); a body over cloud.MaxBody is refused before it is read;
// and a request refused before its body was read closes the connection
// rather than read the body to reuse it.
func TestSigningGaps(t *testing.T) {
	t.Parallel()
	env := cloudtest.Start(t, cloudtest.Options{})
	now := time.Now()
	in10 := now.Add(10 * time.Minute)
	list := env.Endpoint + "/instance?manager-id=00000000-0000-4000-8000-000000000000&manager-type=instance-pool"
	big := `{"name":"x","description":"` + strings.Repeat("a", cloud.MaxBody) + `"}`
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantMsg    string
		wantClose  bool
	}{
		{"every argument signed", signedWith(t, "GET", list, "", env.Key, env.Secret, []string{"manager-id", "manager-type"}, in10), 200, "", false},
		{"no argument signed", signedWith(t, "GET", list, "", env.Key, env.Secret, nil, in10), 403, "manager-id, manager-type", false},
		{"one argument unsigned", signedWith(t, "GET", list, "", env.Key, env.Secret, []string{"manager-id"}, in10), 403, "not covered by the signature: manager-type", false},
		{"argument appended to a signed request", func() *http.Request {
			r := signedWith(t, "GET", env.Endpoint+"/load-balancer", "", env.Key, env.Secret, nil, in10)
			r.URL.RawQuery = "name=evil"
			return r
		}(), 403, "name", false},
		{"expires as egoscale signs (10 minutes)", signedWith(t, "GET", env.Endpoint+"/load-balancer", "", env.Key, env.Secret, nil, in10), 200, "", false},
		{"expires an hour ahead", signedWith(t, "GET", env.Endpoint+"/load-balancer", "", env.Key, env.Secret, nil, now.Add(time.Hour)), 403, "ahead", false},
		{"expires in ten years", signedWith(t, "GET", env.Endpoint+"/load-balancer", "", env.Key, env.Secret, nil, now.AddDate(10, 0, 0)), 403, "ahead", false},
		{"signed body over the limit", signedWith(t, "POST", env.Endpoint+"/load-balancer", big, env.Key, env.Secret, nil, in10), 413, "too large", true},
		{"unknown key with a body", signedWith(t, "POST", env.Endpoint+"/load-balancer", `{"name":"x"}`, "EXOnobody", env.Secret, nil, in10), 403, "unknown API key", true},
		{"forged signature with a body", signedWith(t, "POST", env.Endpoint+"/load-balancer", `{"name":"x"}`, env.Key, "wrong", nil, in10), 403, "signature mismatch", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantMsg) {
				t.Errorf("%d %s, want %d with a message containing %q", resp.StatusCode, b, tt.wantStatus, tt.wantMsg)
			}
			if resp.Close != tt.wantClose {
				t.Errorf("Connection: close %v, want %v", resp.Close, tt.wantClose)
			}
		})
	}
	if lbs, err := env.Client.ListLoadBalancers(t.Context()); err != nil || len(lbs.LoadBalancers) != 0 {
		t.Errorf("load balancers after refused requests: %v, %v; want none", lbs, err)
	}
}
