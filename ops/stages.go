package ops

import (
	"fmt"
	"time"
)

// Stage states, in StageStatus.State.
const (
	// StageRunning: the stage's Run is running.
	StageRunning = "running"
	// StageRestarting: the stage's Run stopped with an error before the gateway stopped; it
	// is run again at NextRestartAt. The gateway is not ready meanwhile.
	StageRestarting = "restarting"
	// StageStopped: the gateway is stopping.
	StageStopped = "stopped"
)

// StageStatus is one pipeline stage (mapper, forwarder, patients) as the gateway that runs
// and restarts it sees it.
type StageStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Restarts counts how often the stage was run again after it stopped with an error.
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// DownSince is when the stage last stopped, while it is not running.
	DownSince time.Time `json:"down_since,omitzero"`
	// NextRestartAt is when the stage is run again, while it is restarting.
	NextRestartAt time.Time `json:"next_restart_at,omitzero"`
}

// Down reports whether the stage is not doing its work.
func (st StageStatus) Down() bool { return st.State != StageRunning }

// reason is the stage's line in the /readyz reasons.
func (st StageStatus) reason(now time.Time) string {
	r := fmt.Sprintf("%s stage is %s", st.Name, st.State)
	if !st.DownSince.IsZero() {
		r += " (down " + humanDuration(max(0, now.Sub(st.DownSince))) + ")"
	}
	if st.LastError != "" {
		r += ": " + st.LastError
	}
	if st.State == StageRestarting && !st.NextRestartAt.IsZero() {
		r += "; next restart in " + humanDuration(max(0, st.NextRestartAt.Sub(now)))
	}
	return r
}

// StageReporter says how the pipeline stages are; the gateway implements it. Safe for
// concurrent use.
type StageReporter interface {
	Stages() []StageStatus
}
