package cloud

import (
	"fmt"
	"time"
)

// Operation states and failure reasons (spec enums).
const (
	opPending = "pending"
	opSuccess = "success"
	opFailure = "failure"
)

// opKind says what completes an operation.
type opKind int

const (
	opDone           opKind = iota // complete when created
	opPoolConverge                 // the pool is running at its size
	opPoolEvict                    // the evicted members are gone
	opPoolDelete                   // the pool is gone
	opInstanceDelete               // the instance is gone
	opNLBDelete                    // the load balancer is gone
	opServiceReady                 // the service listens
	opServiceDelete                // the service is gone
)

// maxPoolFailures fails a pool operation after that many consecutive member
// start failures.
const maxPoolFailures = 3

// maxOps bounds the operations kept; the oldest finished ones go first.
const maxOps = 1000

// operation is an asynchronous API operation: every mutation returns one and
// GET /operation/{id} reports it pending until its kind's condition holds.
type operation struct {
	id      string
	zone    string // operations are looked up in the zone of their request
	kind    opKind
	command string // spec operationId, e.g. "scale-instance-pool"
	refID   string // the resource the reference names, as Exoscale does (below)
	link    string // its API path
	// serviceID is the load balancer service a service operation waits for.
	// Exoscale's reference of a service operation is its load balancer
	// (egoscale v2's CreateNetworkLoadBalancerService reads GET
	// /load-balancer/{reference.id} and finds the new service by name), so
	// refID holds the load balancer there.
	serviceID string
	evicted   []string
	sizeGen   int // of the pool when a create or scale operation was made
	created   time.Time

	state   string
	reason  string
	message string
}

func (op *operation) api() apiOperation {
	return apiOperation{
		ID: op.id, State: op.state, Reason: op.reason, Message: op.message,
		Reference: &apiOperationRef{ID: op.refID, Link: op.link, Command: op.command},
	}
}

// addOpLocked records op (kind, command, reference and kind-specific fields
// set) in zone and evaluates it at once, so an already satisfied operation
// is answered as success.
func (c *Cloud) addOpLocked(zone string, op *operation) *operation {
	op.id, op.zone, op.created, op.state = newUUID(), zone, c.now(), opPending
	c.ops[op.id] = op
	c.opOrder = append(c.opOrder, op.id)
	c.pruneOpsLocked()
	c.evalOpLocked(op, op.created)
	c.poke()
	return op
}

func (c *Cloud) pruneOpsLocked() {
	for len(c.opOrder) > maxOps {
		drop := -1
		for i, id := range c.opOrder {
			if c.ops[id].state != opPending {
				drop = i
				break
			}
		}
		if drop < 0 {
			drop = 0
		}
		delete(c.ops, c.opOrder[drop])
		c.opOrder = append(c.opOrder[:drop], c.opOrder[drop+1:]...)
	}
}

// evalOpLocked moves a pending operation to success or failure when its
// condition is decided.
func (c *Cloud) evalOpLocked(op *operation, now time.Time) {
	if op == nil || op.state != opPending {
		return
	}
	state, reason, msg := c.opOutcomeLocked(op)
	if state == opPending && now.Sub(op.created) > c.cfg.OperationTimeout {
		state, reason, msg = opFailure, "unavailable", "operation timed out"
	}
	op.state, op.reason, op.message = state, reason, msg
	if state != opPending {
		c.log.Info("operation finished", "operation", op.id, "command", op.command, "reference", op.refID, "service", op.serviceID, "state", state, "message", msg)
	}
}

// opOutcomeLocked decides an operation from the current state: pending,
// success, or failure with a reason and message.
func (c *Cloud) opOutcomeLocked(op *operation) (state, reason, msg string) {
	switch op.kind {
	case opPoolConverge:
		p := c.pools[op.refID]
		switch {
		case p == nil || p.deleting:
			return opFailure, "not-found", "instance pool deleted"
		case p.sizeGen != op.sizeGen:
			return opFailure, "interrupted", fmt.Sprintf("superseded: a later request set the instance pool's size to %d", p.rec.Size)
		case c.poolStateLocked(p) == poolRunning:
			return opSuccess, "", ""
		case p.failures >= maxPoolFailures:
			return opFailure, "fault", p.lastErr
		}
	case opPoolEvict:
		for _, id := range op.evicted {
			if c.instances[id] != nil {
				return opPending, "", ""
			}
		}
		return opSuccess, "", ""
	case opPoolDelete:
		if c.pools[op.refID] == nil {
			return opSuccess, "", ""
		}
	case opInstanceDelete:
		if c.instances[op.refID] == nil {
			return opSuccess, "", ""
		}
	case opNLBDelete:
		if c.nlbs[op.refID] == nil {
			return opSuccess, "", ""
		}
	case opServiceReady:
		_, s := c.findServiceLocked(op.refID, op.serviceID)
		switch {
		case s == nil || s.deleting:
			return opFailure, "not-found", "load balancer service deleted"
		case s.state == "running":
			return opSuccess, "", ""
		case s.state == "error":
			return opFailure, "fault", s.lastErr
		}
	case opServiceDelete:
		if _, s := c.findServiceLocked(op.refID, op.serviceID); s == nil {
			return opSuccess, "", ""
		}
	case opDone:
		return opSuccess, "", ""
	}
	return opPending, "", ""
}

func (c *Cloud) findServiceLocked(nlbID, serviceID string) (*loadBalancer, *service) {
	lb := c.nlbs[nlbID]
	if lb == nil {
		return nil, nil
	}
	for _, s := range lb.services {
		if s.rec.ID == serviceID {
			return lb, s
		}
	}
	return lb, nil
}
