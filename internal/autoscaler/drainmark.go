// The draining mark on the instance and the member's drain credential:
// what the cloud records about a scale-in in progress.

package autoscaler

import (
	"context"
	"fmt"
	"maps"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
)

// DrainingLabel is the instance label that marks a pool member the
// autoscaler is draining; its value is the time the drain was decided (RFC
// 3339, UTC). The autoscaler sets it before it asks the member to drain and
// never removes it from a member it evicts; it removes it only when it
// undoes a drain. Like a cluster autoscaler's taint on a node, the mark
// lives in the cloud, the source of truth: whatever crashes, the next tick
// of any autoscaler on the pool (a restarted one, with or without its state
// file) finds the member and finishes the drain (evicts it) or undoes it.
const DrainingLabel = "tidepool-draining"

// DrainTokenLabel is the instance label under which the local cloud shows a
// member's own drain token (internal/cloud.DrainTokenLabel). When a member
// carries it, POST /drain and DELETE /drain use it instead of
// Config.DrainToken.
const DrainTokenLabel = "tidepool-drain-token"

// opUpdateInstance is the operation label of UpdateInstance failures.
const opUpdateInstance = "update-instance"

// drainMark is what the instance labels say about one member.
type drainMark struct {
	draining bool      // DrainingLabel is set
	since    time.Time // its time; zero if unreadable
	token    string    // DrainTokenLabel, "" if absent
}

func readMark(labels map[string]string) drainMark {
	m := drainMark{token: labels[DrainTokenLabel]}
	if v, ok := labels[DrainingLabel]; ok {
		m.draining = true
		m.since, _ = time.Parse(time.RFC3339, v)
	}
	return m
}

// marks holds the drain marks of the members of one observation, by ID.
type marks map[string]drainMark

// draining returns the members of pool marked as draining, in pool order.
func (ms marks) draining(pool policy.Pool) []policy.Member {
	var out []policy.Member
	for _, m := range pool.Members {
		if ms[m.ID].draining {
			out = append(out, m)
		}
	}
	return out
}

// setLabel sets (value != nil) or removes (value == nil) one label of
// instance id, keeping the others, and waits for the operation. Exoscale
// replaces all labels of an instance at once, so the labels are read first;
// DrainTokenLabel is never written back (the local cloud owns it).
func (c *cloudPool) setLabel(ctx context.Context, id, key string, value *string) error {
	return retry(ctx, c.backoff, c.log, "update instance labels", func(ctx context.Context) error {
		in, err := c.api.GetInstance(ctx, v3.UUID(id))
		if err != nil {
			return c.note(opGetInstance, err)
		}
		labels := maps.Clone(map[string]string(in.Labels))
		if labels == nil {
			labels = map[string]string{}
		}
		delete(labels, DrainTokenLabel)
		if value == nil {
			if _, ok := labels[key]; !ok {
				return nil
			}
			delete(labels, key)
		} else {
			labels[key] = *value
		}
		op, err := c.api.UpdateInstance(ctx, v3.UUID(id), v3.UpdateInstanceRequest{Labels: labels})
		if err != nil {
			return c.note(opUpdateInstance, err)
		}
		return c.wait(ctx, op)
	})
}

// markDraining records on instance id that it is being drained since now.
func (c *cloudPool) markDraining(ctx context.Context, id string, now time.Time) error {
	v := now.UTC().Format(time.RFC3339)
	if err := c.setLabel(ctx, id, DrainingLabel, &v); err != nil {
		return fmt.Errorf("mark %s as draining: %w", id, err)
	}
	return nil
}

// unmarkDraining removes the draining mark of instance id.
func (c *cloudPool) unmarkDraining(ctx context.Context, id string) error {
	if err := c.setLabel(ctx, id, DrainingLabel, nil); err != nil {
		return fmt.Errorf("remove the draining mark of %s: %w", id, err)
	}
	return nil
}
