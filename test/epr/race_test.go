//go:build race

package epr

// raceDetector is true when the tests run under the race detector, which makes every
// handshake, parse and store many times slower: the 5 s bound of issue 16's must-show is
// then widened, since what it guards against (an EPR blocked outright) shows as no AA at all.
const raceDetector = true
