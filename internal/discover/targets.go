package discover

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
)

// Labels attached to every target group. They are plain (not __meta_) labels,
// so Prometheus keeps them on every series scraped from the target.
const (
	LabelPoolID       = "pool_id"
	LabelPoolName     = "pool_name"
	LabelZone         = "zone"
	LabelInstanceID   = "instance_id"
	LabelInstanceName = "instance_name"
)

// TargetGroup is one element of a Prometheus file_sd / http_sd document:
// {"targets":["IP:PORT"],"labels":{...}}.
type TargetGroup struct {
	// Targets are "host:port" scrape addresses, sorted.
	Targets []string `json:"targets"`
	// Labels are attached to every target of the group.
	Labels map[string]string `json:"labels"`
}

// Pool is the instance pool whose members are listed.
type Pool struct {
	// ID and Name identify the instance pool.
	ID, Name string
	// Zone is the zone label; "" leaves it out.
	Zone string
}

// Member is one instance as the cloud reports it.
type Member struct {
	// ID and Name identify the instance.
	ID, Name string
	// PublicIP is the public IPv4 address; "" if none.
	PublicIP string
	// IPv6 is the IPv6 address, used when there is no IPv4; "" if none.
	IPv6 string
	// State is the instance state ("running", "starting", "destroying", ...).
	State string
	// ManagerID is the ID of the pool managing the instance, when the API
	// reports it; "" means unknown (trusted to be the pool asked about).
	ManagerID string
}

// Skipped names a listed instance that is not a target, with the reason.
type Skipped struct {
	// InstanceID is the member left out.
	InstanceID string
	// Reason says why, e.g. "no IP address".
	Reason string
}

// gone lists the states of instances that are leaving: they are no longer
// pool members even if the API still lists them.
var gone = map[string]bool{"destroying": true, "destroyed": true, "expunging": true}

// Build turns the pool's members into target groups: one group per member
// (so each has its own instance labels), with target "IP:port", sorted by
// target and then instance ID. A member is skipped, with a reason, when it
// has no IP address, is being destroyed, or is managed by another pool.
// Build is pure; it never returns nil groups, so an empty pool encodes as [].
func Build(pool Pool, members []Member, port int) (groups []TargetGroup, skipped []Skipped) {
	groups = make([]TargetGroup, 0, len(members))
	for _, m := range members {
		ip := m.PublicIP
		if ip == "" {
			ip = m.IPv6
		}
		switch {
		case m.ManagerID != "" && m.ManagerID != pool.ID:
			skipped = append(skipped, Skipped{m.ID, "managed by " + m.ManagerID + ", not pool " + pool.ID})
			continue
		case gone[m.State]:
			skipped = append(skipped, Skipped{m.ID, "state " + m.State})
			continue
		case ip == "":
			skipped = append(skipped, Skipped{m.ID, "no IP address"})
			continue
		}
		labels := map[string]string{
			LabelPoolID:       pool.ID,
			LabelPoolName:     pool.Name,
			LabelZone:         pool.Zone,
			LabelInstanceID:   m.ID,
			LabelInstanceName: m.Name,
		}
		for k, v := range labels {
			if v == "" {
				delete(labels, k) // an empty label is the same as no label in Prometheus
			}
		}
		groups = append(groups, TargetGroup{
			Targets: []string{net.JoinHostPort(ip, strconv.Itoa(port))},
			Labels:  labels,
		})
	}
	slices.SortFunc(groups, func(a, b TargetGroup) int {
		return cmp.Or(cmp.Compare(a.Targets[0], b.Targets[0]),
			cmp.Compare(a.Labels[LabelInstanceID], b.Labels[LabelInstanceID]))
	})
	return groups, skipped
}

// Encode renders groups as the file_sd JSON document: indented, map keys
// sorted, ending in a newline, so equal groups always give equal bytes. nil
// groups encode as [] (never null).
func Encode(groups []TargetGroup) ([]byte, error) {
	if groups == nil {
		groups = []TargetGroup{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(groups); err != nil {
		return nil, fmt.Errorf("encode target groups: %w", err)
	}
	return buf.Bytes(), nil
}

// targetList returns the sorted addresses of groups.
func targetList(groups []TargetGroup) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Targets...)
	}
	slices.Sort(out)
	return out
}

// diff returns the elements of sorted lists that are only in after (added)
// and only in before (removed).
func diff(before, after []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && before[i] < after[j]):
			removed = append(removed, before[i])
			i++
		case i == len(before) || after[j] < before[i]:
			added = append(added, after[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}
