// Package exoclient builds the egoscale v3 client every tidepool component
// uses, from the course's settings (EXOSCALE_KEY, EXOSCALE_SECRET,
// EXOSCALE_ZONE, EXOSCALE_API_ENDPOINT), so that the same code drives real
// Exoscale and the local cloud.
//
// It owns how a client is configured and must not import any other tidepool
// package.
package exoclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"
)

// Defaults for the zero values of Config.
const (
	DefaultZone    = "ch-gva-2"
	DefaultTimeout = 30 * time.Second
)

// Config says how to reach the API.
type Config struct {
	// Key and Secret are the API credentials; both are required.
	Key, Secret string
	// Zone selects the endpoint https://api-<zone>.exoscale.com/v2; ""
	// means DefaultZone. Ignored when Endpoint is set.
	Zone string
	// Endpoint overrides the zone endpoint, e.g. "http://127.0.0.1:8580/v2"
	// for the local cloud.
	Endpoint string
	// Timeout bounds each API request; 0 means DefaultTimeout.
	Timeout time.Duration
	// UserAgent names the component in requests; "" means "tidepool".
	UserAgent string
	// Transport, if set, carries the requests (tests close its idle
	// connections); nil means http.DefaultTransport.
	Transport http.RoundTripper
}

// EndpointFor returns the API endpoint a Config resolves to.
func (c Config) EndpointFor() string {
	if c.Endpoint != "" {
		return c.Endpoint
	}
	zone := c.Zone
	if zone == "" {
		zone = DefaultZone
	}
	return fmt.Sprintf("https://api-%s.exoscale.com/v2", zone)
}

// New returns an egoscale v3 client for cfg. It does not contact the API;
// every error it returns is a configuration error (missing credentials, an
// endpoint that is not an absolute http(s) URL).
func New(cfg Config) (*v3.Client, error) {
	if cfg.Key == "" || cfg.Secret == "" {
		return nil, errors.New("exoscale API key and secret are required (EXOSCALE_KEY, EXOSCALE_SECRET)")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("API endpoint %q: want an absolute http:// or https:// URL such as http://127.0.0.1:8580/v2", cfg.Endpoint)
		}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "tidepool"
	}
	c, err := v3.NewClient(credentials.NewStaticCredentials(cfg.Key, cfg.Secret),
		v3.ClientOptWithEndpoint(v3.Endpoint(cfg.EndpointFor())),
		v3.ClientOptWithHTTPClient(&http.Client{Timeout: timeout, Transport: cfg.Transport}),
		v3.ClientOptWithUserAgent(ua))
	if err != nil {
		return nil, fmt.Errorf("exoscale client: %w", err)
	}
	return c, nil
}
