// Crash safety: a change is recorded before it is acted on, and whatever a
// crash left unfinished is reconciled against the cloud at the next tick.
//
// What is recorded where:
//
//   - In the state file (Config.StateFile, optional): the Intent of the
//     change in progress, written (atomically, fsynced) before the first
//     request of the change reaches the cloud, together with the pending
//     signals minus the ones the change consumed; cleared when the change is
//     done. A scale-up or scale-down intent survives every crash.
//   - On the instance (always): DrainingLabel on the member being drained,
//     set before it is asked to drain. It needs no state file: any
//     autoscaler that observes the pool sees it.
//
// A tick first reconciles, then decides:
//
//	observe ──▶ marked member? ──yes──▶ finish it (drain, evict), or undo the
//	   │                                drain when evicting would go below Min
//	   │ no                                  │ (this tick's change: no decision)
//	   ▼                                      ▼
//	intent? ──yes──▶ compare with the cloud: reached it → done (no decision);
//	   │             never reached it → its signals are pending again
//	   ▼
//	decide ──▶ change? ──▶ record the intent ──▶ act ──▶ clear the intent
//
// So a signal causes at most one change whatever crashes: the signals a
// change consumed leave the state file in the same write that records the
// intent, and an intent found reached is never carried out again; and a
// member never stays out of service: the mark brings every drain to an end.
// The cloud is the source of truth: the intent only says what to look for.

package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// Reasons of the decisions a tick records when it reconciles instead of
// deciding.
const (
	// ReasonResumeDrain: a member marked as draining was found (a scale-in
	// was interrupted); the tick finished the drain and evicted it.
	ReasonResumeDrain policy.Reason = "resume-drain"
	// ReasonUndoDrain: a member marked as draining was found, but evicting
	// it would take the pool below its minimum; the drain was undone.
	ReasonUndoDrain policy.Reason = "undo-drain"
	// ReasonChangeFound: the change recorded in the state file before a
	// restart had reached the cloud; nothing more is done for it.
	ReasonChangeFound policy.Reason = "change-found"
)

// Intent is a change decided and being carried out, as the state file
// records it.
type Intent struct {
	// Decided is when the change was decided.
	Decided time.Time `json:"decided"`
	// Action is policy.ActionScaleUp or policy.ActionScaleDown.
	Action policy.Action `json:"action"`
	// From and To are the pool sizes before and after the change.
	From int `json:"from"`
	To   int `json:"to"`
	// Victims are the members a scale-in evicts, in order.
	Victims []string `json:"victims,omitempty"`
	// Pending are the signals the change consumed; they are pending again
	// if the change is found never to have reached the cloud.
	Pending policy.Pending `json:"pending"`
}

// validate reports an intent no autoscaler could have written.
func (in *Intent) validate() error {
	switch {
	case in.Action != policy.ActionScaleUp && in.Action != policy.ActionScaleDown:
		return fmt.Errorf("intent action %q", in.Action)
	case in.From < 0 || in.To < 0:
		return fmt.Errorf("intent sizes %d to %d", in.From, in.To)
	case in.Pending.Up < 0 || in.Pending.Down < 0:
		return errors.New("intent with negative signals")
	case in.Action == policy.ActionScaleDown && len(in.Victims) == 0:
		return errors.New("scale-down intent without victims")
	}
	return nil
}

// minSize is the smallest pool size the policy allows (policies built on
// policy.Limits report it through Bounds); 1 otherwise.
func (a *Autoscaler) minSize() int {
	if b, ok := a.cfg.Policy.(interface{ Bounds() (int, int) }); ok {
		lo, _ := b.Bounds()
		return lo
	}
	return 1
}

// reconcile finishes what an interrupted change left in the cloud, before
// the tick decides anything. It reports handled when it did (or tried)
// something that counts as this tick's change; its decision and error are
// then the tick's. An intent found never to have reached the cloud gives
// its signals back and is not handled: the tick decides as usual.
func (a *Autoscaler) reconcile(ctx context.Context, pool policy.Pool, ms marks) (d policy.Decision, handled bool, err error) {
	in := a.getIntent()
	toFinish := ms.draining(pool)
	if in == nil && len(toFinish) == 0 {
		return d, false, nil
	}
	present := make(map[string]policy.Member, len(pool.Members))
	for _, m := range pool.Members {
		present[m.ID] = m
	}
	var found string // a change found done, for the record
	if in != nil {
		log := a.log.With("intent_action", in.Action, "intent_from", in.From, "intent_to", in.To, "decided", in.Decided)
		var gone []string
		for _, id := range in.Victims {
			if _, ok := present[id]; !ok {
				gone = append(gone, id)
			}
		}
		reached := false
		switch in.Action {
		case policy.ActionScaleUp:
			reached = pool.Size != in.From
		case policy.ActionScaleDown:
			reached = len(gone) > 0 || len(toFinish) > 0
			if len(gone) > 0 {
				// A scale-in of several members stopped between two: the
				// rest of it is still due.
				for _, id := range in.Victims {
					if m, ok := present[id]; ok && !ms[id].draining {
						toFinish = append(toFinish, m)
					}
				}
			}
		}
		if !reached {
			log.Info("the change recorded before a restart never reached the cloud; its signals are pending again",
				"size", pool.Size, "pending_up", in.Pending.Up, "pending_down", in.Pending.Down)
			a.metrics.setPending(a.signals.restore(in.Pending))
			a.setIntent(nil)
			if len(toFinish) == 0 {
				return d, false, nil
			}
		} else if len(toFinish) == 0 {
			found = fmt.Sprintf("the change from %d to %d recorded at %s had reached the cloud before a restart (now %d)",
				in.From, in.To, in.Decided.UTC().Format(time.RFC3339), pool.Size)
			log.Info("change found done", "size", pool.Size)
		}
	}
	if found != "" {
		d = policy.Decision{From: pool.Size, To: pool.Size, Action: policy.ActionNone, Reason: ReasonChangeFound,
			Message: fmt.Sprintf("from %d to %d because %s", pool.Size, pool.Size, found)}
		a.setIntent(nil)
		a.setLastScale(a.cfg.Now())
		a.log.Info("scaling decision", "from", d.From, "to", d.To, "action", d.Action, "reason", d.Reason, "decision", d.Message)
		a.record(d, resultScaled, nil)
		return d, true, nil
	}
	return a.finishDrains(ctx, pool, ms, toFinish)
}

// finishDrains brings the drains of members to an end, in order: each is
// drained and evicted, or, when evicting it would take the pool below its
// minimum, its drain is undone (DELETE /drain, mark removed).
func (a *Autoscaler) finishDrains(ctx context.Context, pool policy.Pool, ms marks, members []policy.Member) (policy.Decision, bool, error) {
	mctx, release := graceContext(ctx, a.cfg.ShutdownTimeout)
	defer release()
	size, lo := pool.Size, a.minSize()
	var evicted, undone, why []string
	var errs []error
	changed := false
	for _, m := range members {
		mk := ms[m.ID]
		log := a.log.With("member", m.ID, "marked_at", mk.since)
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("not finishing the drain of %s: %w", m.ID, ctx.Err()))
			break
		}
		if size-1 < lo {
			if !mk.draining {
				continue // an unmarked victim of an old decision: nothing to undo
			}
			log.Info("undoing a drain: evicting the member would take the pool below its minimum", "size", size, "min", lo)
			if err := a.drainer.undrain(ctx, m, a.drainer.credential(mk.token)); err != nil {
				errs = append(errs, fmt.Errorf("undo the drain of %s (kept marked, retried next tick): %w", m.ID, err))
				continue
			}
			if err := a.cloud.unmarkDraining(ctx, m.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			undone = append(undone, m.ID)
			why = append(why, fmt.Sprintf("member %s was left draining and evicting it would take the pool below its minimum %d: drain undone", m.ID, lo))
			continue
		}
		log.Info("finishing a drain left by an interrupted scale-in", "size", size)
		sent, err := a.retire(ctx, mctx, size, m, mk)
		changed = changed || sent
		if err != nil {
			errs = append(errs, err)
			break
		}
		evicted = append(evicted, m.ID)
		why = append(why, fmt.Sprintf("member %s was left draining by an interrupted scale-in", m.ID))
		size--
	}
	d := policy.Decision{From: pool.Size, To: size, Action: policy.ActionNone, Reason: ReasonUndoDrain}
	if len(evicted) > 0 {
		d.Action, d.Reason, d.Victims = policy.ActionScaleDown, ReasonResumeDrain, evicted
	}
	if len(why) == 0 {
		why = append(why, "a drain left by an interrupted scale-in could not be finished yet")
	}
	d.Message = fmt.Sprintf("from %d to %d because %s", d.From, d.To, strings.Join(why, "; "))
	err := errors.Join(errs...)
	if changed {
		a.setLastScale(a.cfg.Now())
	}
	result := resultScaled
	switch {
	case err != nil && ctx.Err() != nil:
		result = resultAborted
	case err != nil:
		result = resultError
	case len(evicted) == 0:
		result = resultNoop
	}
	if err == nil {
		// Done: the intent, if any, has nothing more to say. On an error it
		// is kept, and the next tick retries from the marks and it.
		a.setIntent(nil)
	}
	log := a.log.With("from", d.From, "to", d.To, "action", d.Action, "reason", d.Reason, "undone", len(undone))
	if err != nil {
		log.Error("reconciling an interrupted scale-in failed", "decision", d.Message, "err", err)
	} else {
		log.Info("scaling decision", "decision", d.Message)
	}
	a.record(d, result, err)
	if changed {
		a.refreshPool(ctx)
	}
	return d, true, err
}

// retire takes member m out of a pool of size members: it checks that the
// pool still has that size and member, marks the member as draining on the
// instance (unless mk says it is), drains it and evicts it. sent reports
// whether an evict request reached the cloud. ctx bounds the checks and the
// drain; mctx, which outlives a shutdown by ShutdownTimeout, the eviction.
func (a *Autoscaler) retire(ctx, mctx context.Context, size int, m policy.Member, mk drainMark) (sent bool, err error) {
	if err := a.cloud.checkVictim(ctx, size, m.ID); err != nil {
		return false, fmt.Errorf("check victim %s: %w", m.ID, err)
	}
	if !mk.draining {
		if err := a.cloud.markDraining(ctx, m.ID, a.cfg.Now()); err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("not draining %s: %w", m.ID, ctx.Err())
			}
			// A cloud that refuses instance labels still scales; only a
			// crash during this drain is then recovered from the state
			// file alone.
			a.log.Warn("cannot mark the member as draining, draining it anyway", "member", m.ID, "err", err)
		}
	}
	a.drainer.drain(ctx, m, a.drainer.credential(mk.token))
	sent, err = a.cloud.evict(mctx, m.ID)
	if err != nil {
		return sent, fmt.Errorf("evict %s: %w", m.ID, err)
	}
	a.log.Info("member evicted", "member", m.ID)
	return sent, nil
}

// begin records the intent of decision d, which consumed pending, and
// writes the state file before anything is sent to the cloud. On error
// nothing was recorded and the change must not start.
func (a *Autoscaler) begin(d policy.Decision, pending policy.Pending) error {
	a.setIntent(&Intent{Decided: a.cfg.Now(), Action: d.Action, From: d.From, To: d.To,
		Victims: slices.Clone(d.Victims), Pending: pending})
	if err := a.saveState(); err != nil {
		a.setIntent(nil)
		return fmt.Errorf("record the change before acting: %w", err)
	}
	return nil
}
