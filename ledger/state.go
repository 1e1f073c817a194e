package ledger

// State is where an incident is on its way to the national service: the state of its
// delivery record (docs/api.md), with the meanings docs/delivery.md gives under "States".
type State string

// The delivery states.
const (
	StateReceived    State = "received"
	StateQueued      State = "queued"
	StateDelivering  State = "delivering"
	StateDelivered   State = "delivered"
	StateRetrying    State = "retrying"
	StateRejected    State = "rejected"
	StateQuarantined State = "quarantined"
	StateHeld        State = "held"
	StateUnknown     State = "unknown"
	StateFailed      State = "failed"
)

// stateInfo is what the gateway knows of a state beside its name. A new state is added here,
// with its properties, and its transitions are methods of Entry; docs/delivery.md says what it
// means, and the status page gives it a colour (ops).
type stateInfo struct {
	state State
	// needsOperator: the incident stays in the state until a person acts (see NeedsOperator).
	needsOperator bool
	// reviewable: an operator may mark an incident in the state as looked at.
	reviewable bool
}

// states lists every state in the order operators see them: those that need a person first.
var states = []stateInfo{
	{StateUnknown, true, true},
	{StateFailed, true, true},
	{StateRejected, true, true},
	{StateQuarantined, true, true},
	{StateHeld, false, true},
	{StateRetrying, false, false},
	{StateDelivering, false, false},
	{StateQueued, false, false},
	{StateReceived, false, false},
	{StateDelivered, false, false},
}

func (s State) info() (stateInfo, bool) {
	for _, i := range states {
		if i.state == s {
			return i, true
		}
	}
	return stateInfo{}, false
}

// States returns every state, in the order operators see them: those that need a person first.
func States() []State {
	out := make([]State, len(states))
	for i, s := range states {
		out[i] = s.state
	}
	return out
}

// AttentionStates returns the states that need an operator (see NeedsOperator), in the order
// States lists them.
func AttentionStates() []State {
	var out []State
	for _, s := range states {
		if s.needsOperator {
			out = append(out, s.state)
		}
	}
	return out
}

// Known reports whether s is one of the delivery states.
func (s State) Known() bool {
	_, ok := s.info()
	return ok
}

// NeedsOperator reports whether an incident in s stays there until a person acts: it ended
// without delivery (rejected, quarantined, failed) or with an outcome nobody can know
// (unknown). The forwarder does not send the record that put it there again by itself, and the
// status page lists it for an operator.
func (s State) NeedsOperator() bool {
	i, _ := s.info()
	return i.needsOperator
}

// Reviewable reports whether an operator may mark an incident in s reviewed: the states that
// need an operator, and held.
func (s State) Reviewable() bool {
	i, _ := s.info()
	return i.reviewable
}
