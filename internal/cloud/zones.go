package cloud

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
)

// Zones are Exoscale's zone names (the spec's zone-name enum). The cloud
// answers for each of them: GET /zone lists them all, and every resource
// belongs to the zone it was created in.
var Zones = []string{"ch-gva-2", "ch-dk-2", "de-fra-1", "de-muc-1", "at-vie-1", "at-vie-2", "bg-sof-1", "hr-zag-1"}

func knownZone(z string) bool { return slices.Contains(Zones, z) }

// zonePathPrefix starts the path of a zone's local endpoint:
// /zone/<name>/v2/... is that zone's API, /v2/... Config.Zone's.
const zonePathPrefix = "/zone/"

// requestZone says which zone r addresses and the API path within it
// (from /v2 on): /zone/<name>/v2/... names it in the path; a Host of
// api-<name>.exoscale.com (an HTTPS front for clients with a fixed host)
// names it in the host; anything else is Config.Zone. ok is false for an
// unknown zone name.
func (c *Cloud) requestZone(r *http.Request) (zone, path, rawPath string, ok bool) {
	path, rawPath = r.URL.Path, r.URL.RawPath
	if rest, found := strings.CutPrefix(path, zonePathPrefix); found {
		zone, rest, _ = strings.Cut(rest, "/")
		path = "/" + rest
		if rawPath != "" {
			rawPath = strings.TrimPrefix(rawPath, zonePathPrefix+zone)
		}
		return zone, path, rawPath, knownZone(zone)
	}
	if z, found := hostZone(r.Host); found {
		return z, path, rawPath, knownZone(z)
	}
	return c.cfg.Zone, path, rawPath, true
}

// hostZone returns <name> of a host api-<name>.exoscale.com[:port].
func hostZone(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	z, found := strings.CutPrefix(strings.ToLower(host), "api-")
	if !found {
		return "", false
	}
	return strings.CutSuffix(z, ".exoscale.com")
}

type zoneKey struct{}

// zoneOf returns the zone a request handled by Handler addresses.
func zoneOf(r *http.Request) string {
	z, _ := r.Context().Value(zoneKey{}).(string)
	return z
}

func withZone(r *http.Request, zone string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), zoneKey{}, zone))
}

// zoneEndpoints returns every zone's API endpoint as seen by r: with a Host
// of api-<name>.exoscale.com, Exoscale's own endpoints (so that clients stay
// on the front that brought them); else Config.PublicEndpoint (or the
// request's scheme and host) + /v2 for Config.Zone and
// .../zone/<name>/v2 for the others.
func (c *Cloud) zoneEndpoints(r *http.Request) []apiZone {
	out := make([]apiZone, 0, len(Zones))
	if _, ok := hostZone(r.Host); ok {
		for _, z := range Zones {
			out = append(out, apiZone{Name: z, APIEndpoint: "https://api-" + z + ".exoscale.com/v2"})
		}
		return out
	}
	base := c.cfg.PublicEndpoint
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host + "/v2"
	}
	root := strings.TrimSuffix(base, "/v2")
	for _, z := range Zones {
		ep := base
		if z != c.cfg.Zone {
			ep = root + zonePathPrefix + z + "/v2"
		}
		out = append(out, apiZone{Name: z, APIEndpoint: ep})
	}
	return out
}
