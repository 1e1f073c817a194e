//go:build !race

package httppush

// canonRace is true when the tests run under the race detector (hash_race_test.go).
const canonRace = false
