//go:build race

package httppush

// canonRace is true when the tests run under the race detector, which makes CPU-bound code
// many times slower.
const canonRace = true
