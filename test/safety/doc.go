// Package safety holds the test that keeps psgw's clinical safety case honest
// (docs/safety/). The hazard log, docs/safety/hazard-log.yaml, names for every control the
// tests that verify it; TestHazardLog reads the log and fails when a named test does not
// exist in the tree, is skipped unconditionally, or may be skipped in CI (a skip under a
// condition that .ci/run does not meet), or when a hazard has no control with a test.
// TestHazardLogRendered keeps docs/safety/hazard-log.md, the log as people read it, equal to
// the YAML (go test ./test/safety -update rewrites it).
//
// The checker reads the Go files with go/parser rather than running go test -list, so it
// costs well under a second in CI. What it can and cannot see of a skip is written in
// docs/safety/clinical-risk-management-plan.md, "Evidence that runs".
package safety
