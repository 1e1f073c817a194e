// Package container tests psgw as trust IT deploy it: the image built from this repository's
// Dockerfile, run by a real Docker engine on a fresh named volume, with the national service
// played by the simulator in a container of its own on a private network. Nothing is pulled:
// test/dockertest builds every image here. The tests skip without an engine, and fail
// without one when PSGW_REQUIRE_DOCKER is set (as in CI).
package container
