package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)

// pool returns a running pool of size n whose member i was created i minutes
// before t0-1h, so member "m1" is the newest.
func pool(n int) Pool {
	p := Pool{Size: n, State: StateRunning}
	for i := 1; i <= n; i++ {
		p.Members = append(p.Members, Member{
			ID:        "m" + string(rune('0'+i)),
			CreatedAt: t0.Add(-time.Hour - time.Duration(i)*time.Minute),
		})
	}
	return p
}

func TestWebhookDecide(t *testing.T) {
	limits := Limits{Min: 1, Max: 4, Cooldown: 5 * time.Minute, Warmup: 2 * time.Minute}
	warming := pool(2)
	warming.Members[1].CreatedAt = t0.Add(-30 * time.Second)
	scaling := pool(2)
	scaling.State = "scaling-up"
	noMembers := pool(3)
	noMembers.Members = nil

	tests := []struct {
		name        string
		limits      *Limits // nil means the default limits above
		obs         Observation
		wantTo      int
		wantAction  Action
		wantReason  Reason
		wantVictims []string
		wantMsg     string // substring of Message
	}{
		{name: "none", obs: Observation{Pool: pool(2)},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonNoSignal, wantMsg: "from 2 to 2 because no scaling signal"},
		{name: "up", obs: Observation{Pool: pool(2), Pending: Pending{Up: 1}},
			wantTo: 3, wantAction: ActionScaleUp, wantReason: ReasonUpSignal, wantMsg: "from 2 to 3 because a scale-up signal arrived (1 up, 0 down"},
		{name: "many ups still one step", obs: Observation{Pool: pool(2), Pending: Pending{Up: 7}},
			wantTo: 3, wantAction: ActionScaleUp, wantReason: ReasonUpSignal},
		{name: "down evicts newest", obs: Observation{Pool: pool(3), Pending: Pending{Down: 1}},
			wantTo: 2, wantAction: ActionScaleDown, wantReason: ReasonDownSignal, wantVictims: []string{"m1"},
			wantMsg: "from 3 to 2 because a scale-down signal arrived (0 up, 1 down since the last tick); evicting m1"},
		{name: "down evicts oldest when asked", limits: &Limits{Min: 1, Max: 4, Victims: Oldest},
			obs:    Observation{Pool: pool(3), Pending: Pending{Down: 2}},
			wantTo: 2, wantAction: ActionScaleDown, wantReason: ReasonDownSignal, wantVictims: []string{"m3"}},
		{name: "both: up beats down", obs: Observation{Pool: pool(2), Pending: Pending{Up: 1, Down: 3}},
			wantTo: 3, wantAction: ActionScaleUp, wantReason: ReasonUpSignal, wantMsg: "(1 up, 3 down since the last tick)"},
		{name: "up just below max", obs: Observation{Pool: pool(3), Pending: Pending{Up: 1}},
			wantTo: 4, wantAction: ActionScaleUp, wantReason: ReasonUpSignal},
		{name: "up at max is a no-op", obs: Observation{Pool: pool(4), Pending: Pending{Up: 1}},
			wantTo: 4, wantAction: ActionNone, wantReason: ReasonAtMax, wantMsg: "from 4 to 4 because the pool is at its maximum size 4"},
		{name: "down just above min", obs: Observation{Pool: pool(2), Pending: Pending{Down: 1}},
			wantTo: 1, wantAction: ActionScaleDown, wantReason: ReasonDownSignal, wantVictims: []string{"m1"}},
		{name: "down at min is a no-op", obs: Observation{Pool: pool(1), Pending: Pending{Down: 1}},
			wantTo: 1, wantAction: ActionNone, wantReason: ReasonAtMin, wantMsg: "from 1 to 1 because the pool is at its minimum size 1"},
		{name: "zero min means one", limits: &Limits{}, obs: Observation{Pool: pool(1), Pending: Pending{Down: 1}},
			wantTo: 1, wantAction: ActionNone, wantReason: ReasonAtMin},
		{name: "no max", limits: &Limits{Min: 1}, obs: Observation{Pool: pool(9), Pending: Pending{Up: 1}},
			wantTo: 10, wantAction: ActionScaleUp, wantReason: ReasonUpSignal},
		{name: "below min grows without a signal", limits: &Limits{Min: 3, Max: 5}, obs: Observation{Pool: pool(1)},
			wantTo: 3, wantAction: ActionScaleUp, wantReason: ReasonBelowMin, wantMsg: "from 1 to 3 because the pool is below its minimum size 3"},
		{name: "above max shrinks even on up", limits: &Limits{Min: 1, Max: 2}, obs: Observation{Pool: pool(4), Pending: Pending{Up: 1}},
			wantTo: 2, wantAction: ActionScaleDown, wantReason: ReasonAboveMax, wantVictims: []string{"m1", "m2"}},
		{name: "pool not running holds up", obs: Observation{Pool: scaling, Pending: Pending{Up: 1}},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonPoolNotRunning,
			wantMsg: "from 2 to 2 because the pool is scaling-up, not running; held the change to 3"},
		{name: "pool not running, no signal, is just no signal", obs: Observation{Pool: scaling},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonNoSignal},
		{name: "pool state unknown holds", obs: Observation{Pool: Pool{Size: 2}, Pending: Pending{Down: 1}},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonPoolNotRunning, wantMsg: "the pool is unknown"},
		{name: "cooldown holds", obs: Observation{Pool: pool(2), Pending: Pending{Up: 1}, LastScale: t0.Add(-4 * time.Minute)},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonCooldown, wantMsg: "lasts another 1m0s"},
		{name: "cooldown over", obs: Observation{Pool: pool(2), Pending: Pending{Up: 1}, LastScale: t0.Add(-5 * time.Minute)},
			wantTo: 3, wantAction: ActionScaleUp, wantReason: ReasonUpSignal},
		{name: "cooldown does not matter without a change", obs: Observation{Pool: pool(2), LastScale: t0.Add(-time.Minute)},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonNoSignal},
		{name: "warmup holds", obs: Observation{Pool: warming, Pending: Pending{Down: 1}},
			wantTo: 2, wantAction: ActionNone, wantReason: ReasonWarmup, wantMsg: "member m2 warms up for another 1m30s"},
		{name: "warmup disabled", limits: &Limits{Min: 1, Max: 4}, obs: Observation{Pool: warming, Pending: Pending{Up: 1}},
			wantTo: 3, wantAction: ActionScaleUp, wantReason: ReasonUpSignal},
		{name: "scale-in needs known members", obs: Observation{Pool: noMembers, Pending: Pending{Down: 1}},
			wantTo: 3, wantAction: ActionNone, wantReason: ReasonNoVictim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limits
			if tt.limits != nil {
				l = *tt.limits
			}
			got := Webhook{Limits: l}.Decide(tt.obs, t0)
			if got.From != tt.obs.Pool.Size || got.To != tt.wantTo || got.Action != tt.wantAction || got.Reason != tt.wantReason {
				t.Errorf("Decide = from %d to %d %s %s, want from %d to %d %s %s (message %q)",
					got.From, got.To, got.Action, got.Reason, tt.obs.Pool.Size, tt.wantTo, tt.wantAction, tt.wantReason, got.Message)
			}
			if !slices.Equal(got.Victims, tt.wantVictims) {
				t.Errorf("Victims = %v, want %v", got.Victims, tt.wantVictims)
			}
			if !strings.Contains(got.Message, tt.wantMsg) {
				t.Errorf("Message = %q, want it to contain %q", got.Message, tt.wantMsg)
			}
			if want := tt.obs.Pending.Direction(); got.Requested != want {
				t.Errorf("Requested = %q, want %q", got.Requested, want)
			}
			// Invariants of every decision.
			if (got.To > got.From) != (got.Action == ActionScaleUp) || (got.To < got.From) != (got.Action == ActionScaleDown) {
				t.Errorf("Action %s does not match from %d to %d", got.Action, got.From, got.To)
			}
			if lo, hi := l.Bounds(); got.Action != ActionNone && (got.To < lo || got.To > hi) {
				t.Errorf("To %d outside [%d, %d]", got.To, lo, hi)
			}
		})
	}
}

func TestDecideIsPure(t *testing.T) {
	obs := Observation{Pool: pool(3), Pending: Pending{Down: 1}}
	p := Webhook{Limits: Limits{Min: 1, Max: 5}}
	first := p.Decide(obs, t0)
	for range 3 {
		if got := p.Decide(obs, t0); got.Message != first.Message || !slices.Equal(got.Victims, first.Victims) {
			t.Fatalf("Decide not deterministic: %+v then %+v", first, got)
		}
	}
	if obs.Pool.Members[0].ID != "m1" {
		t.Errorf("Decide reordered the caller's members: first is %s", obs.Pool.Members[0].ID)
	}
}

func TestVictims(t *testing.T) {
	members := []Member{
		{ID: "b", CreatedAt: t0},
		{ID: "unknown"},
		{ID: "a", CreatedAt: t0},
		{ID: "old", CreatedAt: t0.Add(-time.Hour)},
	}
	tests := []struct {
		order VictimOrder
		n     int
		want  []string
	}{
		{Newest, 2, []string{"b", "a"}},
		{"", 1, []string{"b"}},
		{Oldest, 2, []string{"unknown", "old"}},
		{Newest, 9, []string{"b", "a", "old", "unknown"}},
		{Newest, 0, nil},
	}
	for _, tt := range tests {
		if got := Victims(members, tt.n, tt.order); !slices.Equal(got, tt.want) {
			t.Errorf("Victims(%q, %d) = %v, want %v", tt.order, tt.n, got, tt.want)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		l       Limits
		wantErr bool
	}{
		{Limits{}, false},
		{Limits{Min: 2, Max: 2}, false},
		{Limits{Min: 3, Max: 2}, true},
		{Limits{Min: 0, Max: 1}, false},
		{Limits{Max: -1}, true},
		{Limits{Cooldown: -time.Second}, true},
		{Limits{Warmup: -time.Second}, true},
		{Limits{Victims: "random"}, true},
	}
	for _, tt := range tests {
		if err := tt.l.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.l, err, tt.wantErr)
		}
	}
}

func TestParseDirection(t *testing.T) {
	for in, want := range map[string]Direction{"up": Up, " UP ": Up, "Down": Down, "sideways": None, "": None} {
		got, ok := ParseDirection(in)
		if got != want || ok != (want != None) {
			t.Errorf("ParseDirection(%q) = %q, %v, want %q", in, got, ok, want)
		}
	}
}

// TestApplyProposals covers targets more than one step away, as a
// target-tracking policy proposes them.
func TestApplyProposals(t *testing.T) {
	l := Limits{Min: 2, Max: 6}
	tests := []struct {
		name       string
		from, want int
		to         int
		reason     Reason
		msg        string
	}{
		{"jump within bounds", 3, 5, 5, "target", "from 3 to 5 because cpu"},
		{"capped at max", 3, 9, 6, "target", "from 3 to 6 because cpu (capped at the maximum size 6)"},
		{"capped at min", 5, 0, 2, "target", "from 5 to 2 because cpu (capped at the minimum size 2)"},
		{"at max already", 6, 9, 6, ReasonAtMax, "from 6 to 6 because the pool is at its maximum size 6 (cpu)"},
		{"at min already", 2, 1, 2, ReasonAtMin, "from 2 to 2 because the pool is at its minimum size 2 (cpu)"},
		{"below min wins", 1, 1, 2, ReasonBelowMin, "from 1 to 2 because the pool is below its minimum size 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := Observation{Pool: pool(tt.from)}
			d := l.Apply(obs, t0, Proposal{Requested: Up, To: tt.want, Reason: "target", Because: "cpu"})
			if d.To != tt.to || d.Reason != tt.reason || !strings.HasPrefix(d.Message, tt.msg) {
				t.Errorf("Apply = to %d %s %q, want to %d %s %q", d.To, d.Reason, d.Message, tt.to, tt.reason, tt.msg)
			}
			if d.To < d.From && len(d.Victims) != d.From-d.To {
				t.Errorf("Victims = %v, want %d", d.Victims, d.From-d.To)
			}
		})
	}
}
