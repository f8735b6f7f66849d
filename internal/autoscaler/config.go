// The autoscaler's configuration and its defaults.

package autoscaler

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr             = "127.0.0.1:8090"
	DefaultInterval         = 60 * time.Second
	DefaultMaxBody          = 1 << 20
	DefaultDirectionLabel   = "scale"
	DefaultDrainTimeout     = 60 * time.Second
	DefaultDrainGrace       = 2 * time.Second
	DefaultRetryAttempts    = 5
	DefaultRetryBase        = time.Second
	DefaultOperationTimeout = 5 * time.Minute
	DefaultShutdownTimeout  = 5 * time.Second
	DefaultHistory          = 20
)

// Config configures an Autoscaler. Cloud and PoolID are required; every
// other field documents its zero-value default.
type Config struct {
	// Cloud is the Exoscale API client (see internal/exoclient).
	Cloud Cloud
	// PoolID is the ID of the instance pool to scale.
	PoolID string
	// Policy decides the pool size; nil means policy.Webhook with zero
	// Limits (min 1, no max, no cooldown, no warmup). A policy with a
	// Validate() error method is validated by New.
	Policy policy.Policy
	// Metrics, if set, is read at every tick and passed to the policy as
	// Observation.Metrics (policy.TargetTracking and policy.Predictive need
	// it); nil means the metrics are always unknown. A read error is logged
	// and the tick goes on with what was read (see MetricSource).
	Metrics MetricSource

	// Addr is the HTTP listen address; "" means DefaultAddr (loopback only).
	// Ignored when Listener is set. An address beyond loopback needs
	// AuthToken or BasicAuth, or OpenWebhooks (see CheckAccess).
	Addr string
	// Listener, if set, is served instead of listening on Addr; Run closes it.
	Listener net.Listener
	// Interval is the tick period; 0 means DefaultInterval.
	Interval time.Duration
	// Ticks, if set, replaces the ticker: Run ticks on every receive (tests
	// and simulations drive the loop with it).
	Ticks <-chan time.Time
	// Now is the clock given to the policy and stamped on records; nil
	// means time.Now.
	Now func() time.Time
	// DryRun logs and records decisions without changing the pool.
	DryRun bool

	// AuthToken, if set, lets webhook requests in with "Authorization:
	// Bearer <AuthToken>".
	AuthToken string
	// BasicAuth, if set as "user:password", lets webhook requests in with
	// that HTTP basic auth. With both AuthToken and BasicAuth set either
	// works; with neither, webhooks are open to whoever reaches the
	// listener, which must then be on loopback (or OpenWebhooks set).
	BasicAuth string
	// OpenWebhooks serves the course's open contract: /up and /down also
	// count GET as a signal, and no credentials are needed on any address.
	// Run logs a warning at start. It excludes AuthToken and BasicAuth.
	// HEAD and OPTIONS are never signals, open or not.
	OpenWebhooks bool
	// MaxBody is the largest accepted webhook body in bytes (larger gets
	// 413); 0 means DefaultMaxBody.
	MaxBody int64
	// DirectionLabel is the alert label giving the direction ("up" or
	// "down") on /webhook; "" means DefaultDirectionLabel.
	DirectionLabel string
	// DirectionAnnotation is the alert annotation read when the label is
	// absent; "" means DefaultDirectionLabel.
	DirectionAnnotation string

	// StateFile, if set, keeps the last scaling time and pending signals
	// across restarts. It is written atomically after every recorded signal,
	// every tick and at shutdown.
	StateFile string

	// NLBID and NLBServiceID, if both set, name the NLB service in front of
	// the pool: a scale-in waits until it reports the victim's health check
	// failing before evicting.
	NLBID, NLBServiceID string
	// AppPort is the member app's port for POST /drain; 0 means the NLB
	// service's target port, or DefaultAppPort without an NLB service.
	AppPort int
	// DrainToken, if set, is sent as "Authorization: Bearer <DrainToken>"
	// with POST /drain.
	DrainToken string
	// DrainTimeout bounds waiting for the NLB to see a victim fail; 0 means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// DrainGrace is the wait for in-flight requests after a victim is out of
	// rotation; 0 means DefaultDrainGrace, negative means none.
	DrainGrace time.Duration
	// HTTPClient sends POST /drain; nil means a client with a 5s timeout.
	HTTPClient *http.Client

	// RetryAttempts is the number of attempts of a failed cloud step; 0
	// means DefaultRetryAttempts.
	RetryAttempts int
	// RetryBase is the first delay between attempts, doubling up to 16
	// times it; 0 means DefaultRetryBase.
	RetryBase time.Duration
	// OperationTimeout bounds waiting for one cloud operation, and for the
	// pool to be running again after it; 0 means DefaultOperationTimeout.
	OperationTimeout time.Duration
	// ShutdownTimeout is how long a change already sent to the cloud may
	// still be waited for after Run's context is cancelled; 0 means
	// DefaultShutdownTimeout. Drain waits end at once on cancellation.
	ShutdownTimeout time.Duration
	// History is the number of decisions kept for /status; 0 means
	// DefaultHistory.
	History int

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Policy == nil {
		c.Policy = policy.Webhook{}
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.DirectionLabel == "" {
		c.DirectionLabel = DefaultDirectionLabel
	}
	if c.DirectionAnnotation == "" {
		c.DirectionAnnotation = DefaultDirectionLabel
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	switch {
	case c.DrainGrace == 0:
		c.DrainGrace = DefaultDrainGrace
	case c.DrainGrace < 0:
		c.DrainGrace = 0
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.RetryAttempts <= 0 {
		c.RetryAttempts = DefaultRetryAttempts
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.OperationTimeout <= 0 {
		c.OperationTimeout = DefaultOperationTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
