package demo

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler"
	"tidepool/internal/promquery"
	"tidepool/internal/report"
)

// drainingSeries is 1 on a member whose app is draining (internal/app).
const drainingSeries = "tidepool_app_draining == 1"

// observation is what the sampler read at one second; negative counts and
// NaN CPU mean unknown, a nil alerts map means unknown.
type observation struct {
	size, running, starting, draining int
	avgCPU                            float64
	cpu                               map[string]float64
	alerts                            map[string]string
}

// unknownObservation has every field unknown.
func unknownObservation() observation {
	return observation{size: -1, running: -1, starting: -1, draining: -1, avgCPU: math.NaN()}
}

// poolMembers lists the pool's members that are not being destroyed: how
// many, how many are running, and the IDs of the running ones.
func poolMembers(ctx context.Context, client *v3.Client, poolID v3.UUID) (size, running int, runningIDs map[string]bool, err error) {
	list, err := client.ListInstances(ctx, v3.ListInstancesWithManagerID(poolID), v3.ListInstancesWithManagerType(v3.ListInstancesManagerTypeInstancePool))
	if err != nil {
		return 0, 0, nil, fmt.Errorf("list instances: %w", err)
	}
	runningIDs = map[string]bool{}
	for _, in := range list.Instances {
		switch in.State {
		case v3.InstanceStateDestroying, v3.InstanceStateDestroyed, v3.InstanceStateExpunging:
			continue
		case v3.InstanceStateRunning:
			running++
			runningIDs[in.ID.String()] = true
		}
		size++
	}
	return size, running, runningIDs, nil
}

// countDraining returns how many of the running members report draining
// to Prometheus (their app's tidepool_app_draining, labelled with the
// instance_id from discover's file).
func countDraining(ctx context.Context, promURL string, runningIDs map[string]bool) (int, error) {
	v, err := promquery.Instant(ctx, promURL, drainingSeries)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range v {
		if runningIDs[s.Labels["instance_id"]] {
			n++
		}
	}
	return n, nil
}

// alertEvents returns the events of the alert state changes from prev to
// cur at t: one KindAlertUp for each alert that started firing and one
// KindAlertDown for each that stopped. A nil cur (unknown) changes nothing.
func alertEvents(t report.Sample, prev, cur map[string]string) []report.Event {
	if cur == nil {
		return nil
	}
	var out []report.Event
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		was, now := prev[name] == report.AlertFiring, cur[name] == report.AlertFiring
		switch {
		case now && !was:
			out = append(out, report.Event{T: t.T, Kind: report.KindAlertUp, Reason: "alert " + name + " started firing"})
		case was && !now:
			out = append(out, report.Event{T: t.T, Kind: report.KindAlertDown, Reason: "alert " + name + " stopped firing (now " + cur[name] + ")"})
		}
	}
	return out
}

// decisionKind is the event kind of an autoscaler decision, "" for one that
// is not an event (nothing to do).
func decisionKind(d autoscaler.Record) string {
	switch d.Result {
	case "scaled":
		if d.To < d.From {
			return report.KindScaleIn
		}
		return report.KindScaleOut
	case "held":
		return report.KindScaleHeld
	case "error", "aborted":
		return report.KindScaleFailed
	}
	return ""
}
