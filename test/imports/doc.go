// Package imports holds the test of the house's boundaries (docs/architecture.md, "Who may
// import whom"): which psgw package may depend on which, checked over the whole tree with
// go list, as Tailscale's tstest/deptest does. The adapters' own boundary is checked beside
// them, in ingest/imports_test.go.
package imports
