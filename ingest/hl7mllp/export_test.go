package hl7mllp

import "net"

// SetStateHook makes every connection report its peer to f each time it is marked busy (a
// message started) or idle (waiting for the next one). Call it before the listener starts;
// the returned function undoes it.
func SetStateHook(f func(peer net.Addr, busy bool)) (restore func()) {
	testHookState = f
	return func() { testHookState = nil }
}
