package ingest

import "sync"

// OtherSource is the source label of every source a SourceLabels gives no series of its own.
const OtherSource = "other"

// DefaultUnconfiguredSourceLabels is how many source names outside the configured sources
// get a metric series of their own (the ADT feed's, sources sending to a gateway that lists
// none) before the rest fold into OtherSource.
const DefaultUnconfiguredSourceLabels = 32

// SourceLabels bounds the values of a metric's source label. A source name comes from
// outside (an incident's "source" field), and each new value of a label is a new series
// that /metrics carries for ever: 2,000 sources once grew /metrics from 16 to 248 KB. So
// the configured sources (sources.NAME) have a series each, the first few other names seen
// since start have theirs, and every other name is counted under OtherSource. Safe for
// concurrent use.
type SourceLabels struct {
	configured map[string]bool
	max        int

	mu   sync.Mutex
	seen map[string]bool
}

// NewSourceLabels returns the labels for the configured sources, letting maxOthers other
// names have a series of their own.
func NewSourceLabels(configured map[string]bool, maxOthers int) *SourceLabels {
	return &SourceLabels{configured: configured, max: maxOthers, seen: map[string]bool{}}
}

// Label returns the label value to count source under: source itself, or OtherSource.
func (l *SourceLabels) Label(source string) string {
	if l == nil || l.configured[source] {
		return source
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[source] {
		return source
	}
	if len(l.seen) < l.max && source != OtherSource {
		l.seen[source] = true
		return source
	}
	return OtherSource
}
