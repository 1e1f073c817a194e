package sim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultRejectMarker is the RejectMarker used when Options leaves it empty.
const DefaultRejectMarker = "[sim:reject]"

// defaultSeed makes fault injection reproducible when Options.Seed is 0.
const defaultSeed = 0x5053_4757 // "PSGW"

// Options configures a Simulator. Only SubscriptionKeys is required.
type Options struct {
	// SubscriptionKeys are the accepted Ocp-Apim-Subscription-Key values. At least one,
	// none empty. SetKeys replaces them at run time.
	SubscriptionKeys []string
	// Versions are the taxonomy versions served; default {5, 6}. A payload whose profile
	// names another version is refused with 422. Known versions: 4, 5, 6.
	Versions []int
	// Validate runs the strict taxonomy checks on a payload that passed the built-in
	// structural checks. It gets the decoded resource (numbers are float64, as
	// encoding/json decodes into any) and must not keep or modify it. It is called from
	// many goroutines at once. Nil means only the built-in checks run.
	Validate func(version int, resource map[string]any) []Issue
	// Faults are the faults injected from the start; SetFaults changes them.
	Faults Faults
	// RejectMarker, when found in AdverseEvent.description, makes the simulator refuse
	// the payload with 422, so tests can force a permanent rejection. Default
	// DefaultRejectMarker.
	RejectMarker string
	// Logger receives one debug line per request and an info line per injected fault.
	Logger zerolog.Logger
	// Now is the clock for meta.lastUpdated, event times and StormUntil; default time.Now.
	Now func() time.Time
	// Seed seeds the fault dice; 0 means a fixed default, so runs are reproducible.
	Seed int64
	// Label, when set, names the request body in the request journal (Requests), so a test
	// can tell which of its records a request carried. It gets the raw body, must not keep it,
	// and is called from many goroutines at once.
	Label func(body []byte) string
}

// Issue is one problem found in a payload. It becomes one OperationOutcome issue with
// severity "error". Message must not quote the offending value: it may be patient data.
type Issue struct {
	Path    string // FHIRPath-like location, e.g. "AdverseEvent.contained[0].id"; goes to diagnostics
	Rule    string // short rule name; goes to details.coding[0].code
	Message string // what is wrong, for a person; goes to details.text
	Code    string // FHIR issue-type code ("invalid", "structure", "required", "value", ...); empty means "invalid"
}

// Simulator is the simulated national service. Create it with New; it is safe for
// concurrent use and needs no closing.
type Simulator struct {
	versions []int
	validate func(int, map[string]any) []Issue
	marker   string
	log      zerolog.Logger
	now      func() time.Time
	refTag   string // distinguishes references of this instance from those of earlier runs
	label    func([]byte) string

	mu     sync.Mutex // guards everything below
	keys   []string
	faults Faults
	dice   *mrand.Rand
	store  store
	stats  Stats
	// journal holds the last MaxJournal national API requests, oldest first.
	journal []Request
	reqSeq  int
}

// New returns a Simulator configured by opts. It fails when no subscription key is given,
// a version is unknown, or a fault setting is out of range.
func New(opts Options) (*Simulator, error) {
	if err := checkKeys(opts.SubscriptionKeys); err != nil {
		return nil, err
	}
	versions := slices.Clone(opts.Versions)
	if len(versions) == 0 {
		versions = []int{5, 6}
	}
	slices.Sort(versions)
	versions = slices.Compact(versions)
	for _, v := range versions {
		if _, ok := canonicalBases[v]; !ok {
			return nil, fmt.Errorf("taxonomy version %d is not known to the simulator", v)
		}
	}
	if err := opts.Faults.Validate(); err != nil {
		return nil, err
	}
	s := &Simulator{
		versions: versions,
		validate: opts.Validate,
		marker:   opts.RejectMarker,
		log:      opts.Logger.With().Str("component", "sim").Logger(),
		now:      opts.Now,
		refTag:   randomHex(2),
		label:    opts.Label,
		keys:     slices.Clone(opts.SubscriptionKeys),
	}
	if s.marker == "" {
		s.marker = DefaultRejectMarker
	}
	if s.now == nil {
		s.now = time.Now
	}
	seed := uint64(opts.Seed)
	if seed == 0 {
		seed = defaultSeed
	}
	s.dice = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.faults = s.normalize(opts.Faults)
	s.store.init()
	s.stats.Faults = map[string]int{}
	return s, nil
}

func checkKeys(keys []string) error {
	if len(keys) == 0 {
		return errors.New("at least one subscription key is required")
	}
	if slices.Contains(keys, "") {
		return errors.New("subscription keys must not be empty")
	}
	return nil
}

// SetFaults replaces the injected faults; it takes effect for requests that start after it.
// A StormFor is turned into StormUntil by the simulator's clock. Values out of range are
// not refused here (Faults.Validate does that for user input): a rate below 0 never fires
// and one above 1 always does.
func (s *Simulator) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = s.normalize(f)
}

// Faults returns the faults in force, with any StormFor already turned into StormUntil.
func (s *Simulator) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

func (s *Simulator) normalize(f Faults) Faults {
	if f.StormFor > 0 {
		f.StormUntil = s.now().Add(f.StormFor)
		f.StormFor = 0
	}
	return f
}

// SetKeys replaces the accepted subscription keys, as when APIM keys are rotated. Requests
// already past the key check are not affected. Empty keys are ignored, and a call with no
// usable key leaves the keys unchanged, so the simulator can never lock everyone out by
// accident (use a key nobody knows to do that on purpose).
func (s *Simulator) SetKeys(keys ...string) {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" })
	if len(keys) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// Reset forgets every stored event and zeroes the stats. Keys and faults stay as they are.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.init()
	s.stats = Stats{Faults: map[string]int{}}
	s.journal, s.reqSeq = nil, 0
}

// randomHex returns n random bytes as 2n lowercase hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
