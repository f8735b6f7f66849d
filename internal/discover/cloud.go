package discover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	v3 "github.com/exoscale/egoscale/v3"
)

// Client is the part of the egoscale v3 client that the agent uses;
// *v3.Client implements it.
type Client interface {
	// GetInstancePool returns the pool with the given ID.
	GetInstancePool(ctx context.Context, id v3.UUID) (*v3.InstancePool, error)
	// ListInstancePools lists the zone's pools (to find a pool by name).
	ListInstancePools(ctx context.Context) (*v3.ListInstancePoolsResponse, error)
	// ListInstances lists instances; the agent filters by manager ID and type.
	ListInstances(ctx context.Context, opts ...v3.ListInstancesOpt) (*v3.ListInstancesResponse, error)
}

var _ Client = (*v3.Client)(nil)

// fetch reads the pool (by ID if poolID is set, else by name) and its members.
// Any error, or a response missing the IDs that identify pool and members,
// fails the whole fetch: a partial member list is never returned.
func fetch(ctx context.Context, c Client, poolID, poolName, zone string) (Pool, []Member, error) {
	var pool *v3.InstancePool
	if poolID != "" {
		p, err := c.GetInstancePool(ctx, v3.UUID(poolID))
		if err != nil {
			return Pool{}, nil, fmt.Errorf("get instance pool %s: %w", poolID, err)
		}
		pool = p
	} else {
		list, err := c.ListInstancePools(ctx)
		if err != nil {
			return Pool{}, nil, fmt.Errorf("list instance pools: %w", err)
		}
		p, err := list.FindInstancePool(poolName)
		if err != nil {
			return Pool{}, nil, fmt.Errorf("find instance pool %q: %w", poolName, err)
		}
		pool = &p
	}
	if pool == nil || pool.ID == "" {
		return Pool{}, nil, &responseError{"instance pool without id"}
	}
	if poolID != "" && string(pool.ID) != poolID {
		return Pool{}, nil, &responseError{fmt.Sprintf("asked for pool %s, got %s", poolID, pool.ID)}
	}
	list, err := c.ListInstances(ctx,
		v3.ListInstancesWithManagerID(pool.ID),
		v3.ListInstancesWithManagerType(v3.ListInstancesManagerTypeInstancePool))
	if err != nil {
		return Pool{}, nil, fmt.Errorf("list instances of pool %s: %w", pool.ID, err)
	}
	if list == nil {
		return Pool{}, nil, &responseError{"empty instance list response"}
	}
	members := make([]Member, 0, len(list.Instances))
	for _, in := range list.Instances {
		if in.ID == "" {
			return Pool{}, nil, &responseError{"instance without id in pool " + string(pool.ID)}
		}
		m := Member{ID: string(in.ID), Name: in.Name, IPv6: in.Ipv6Address, State: string(in.State)}
		if len(in.PublicIP) > 0 {
			m.PublicIP = in.PublicIP.String()
		}
		if in.Manager != nil {
			m.ManagerID = string(in.Manager.ID)
		}
		members = append(members, m)
	}
	return Pool{ID: string(pool.ID), Name: pool.Name, Zone: zone}, members, nil
}

// responseError is an API answer that parsed but cannot be trusted.
type responseError struct{ msg string }

func (e *responseError) Error() string { return "invalid API response: " + e.msg }

// Error kinds counted in tidepool_discover_refresh_errors_total{kind}.
const (
	KindTimeout  = "timeout"   // the refresh deadline passed or a network timeout
	KindAuth     = "auth"      // 401/403: wrong key or secret
	KindNotFound = "not_found" // the pool does not exist
	KindServer   = "server"    // 5xx from the API
	KindNetwork  = "network"   // connection refused, DNS, reset, ...
	KindResponse = "response"  // malformed or inconsistent answer
	KindWrite    = "write"     // publishing the file failed
	KindOther    = "other"     // anything else (other 4xx, ...)
)

// errorKinds lists every kind, so each counter exists (at 0) from the start.
var errorKinds = []string{KindTimeout, KindAuth, KindNotFound, KindServer, KindNetwork, KindResponse, KindWrite, KindOther}

var serverErrors = []error{
	v3.ErrInternalServerError, v3.ErrNotImplemented, v3.ErrBadGateway, v3.ErrServiceUnavailable,
	v3.ErrGatewayTimeout, v3.ErrHTTPVersionNotSupported, v3.ErrVariantAlsoNegotiates,
	v3.ErrInsufficientStorage, v3.ErrLoopDetected, v3.ErrNotExtended, v3.ErrNetworkAuthenticationRequired,
}

// errorKind classifies a refresh error for metrics and logs.
func errorKind(err error) string {
	var (
		netErr  net.Error
		opErr   *net.OpError
		dnsErr  *net.DNSError
		respErr *responseError
		synErr  *json.SyntaxError
		typErr  *json.UnmarshalTypeError
		apiErr  *v3.APIError
	)
	var pub *publishError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pub):
		return KindWrite
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, v3.ErrRequestTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case errors.Is(err, v3.ErrUnauthorized), errors.Is(err, v3.ErrForbidden):
		return KindAuth
	case errors.Is(err, v3.ErrNotFound):
		return KindNotFound
	case isServerError(err):
		return KindServer
	case errors.As(err, &respErr), errors.As(err, &synErr), errors.As(err, &typErr):
		return KindResponse
	case errors.As(err, &apiErr):
		return KindOther
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.Is(err, io.ErrUnexpectedEOF):
		return KindNetwork
	}
	return KindOther
}

func isServerError(err error) bool {
	for _, s := range serverErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// publishError is a failure to write the targets file.
type publishError struct{ err error }

func (e *publishError) Error() string { return "publish targets: " + e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }
