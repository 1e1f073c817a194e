// Package memlimit gives the Go runtime a soft memory limit below the container's, so that a
// gateway whose heap swings (a backlog building, a CSV backfill, a drain) collects harder as
// it nears the container's limit instead of being killed by the kernel for going over it.
//
// Go does not read cgroup memory limits itself: without GOMEMLIMIT the heap may grow to
// twice the live data before a collection, and psgw's live heap under a large backlog is
// hundreds of megabytes (docs/performance.md), so a container sized to the live data alone
// would be OOM-killed on the collector's headroom. An operator's own GOMEMLIMIT, including
// "off", always wins.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the container's limit given to the Go heap and runtime; the rest is
// left for what the runtime does not count: the kernel's page cache of JetStream's files is
// charged to the container too, and reclaiming it is cheaper when some room is left.
const Share = 0.9

// unlimitedV1 is the smallest value a cgroup v1 memory.limit_in_bytes takes when no limit is
// set (the kernel reports LONG_MAX rounded down to a page).
const unlimitedV1 = 1 << 62

// Result says what Apply did and why.
type Result struct {
	// Container is the container's memory limit in bytes, 0 if there is none.
	Container int64
	// Set is the soft limit given to the runtime in bytes, 0 if none was set.
	Set int64
	// Reason is why no limit was set, empty if one was.
	Reason string
}

// Apply sets the runtime's soft memory limit to Share of the cgroup memory limit that
// applies to this process, unless GOMEMLIMIT is set in env or there is no limit. fsys is
// the file system rooted at "/" (os.DirFS("/") in production; tests give a fake one).
func Apply(fsys fs.FS, env func(string) string) (Result, error) {
	if v := env("GOMEMLIMIT"); v != "" {
		return Result{Reason: "GOMEMLIMIT is set (" + v + ")"}, nil
	}
	limit, err := CgroupLimit(fsys)
	if err != nil {
		return Result{}, err
	}
	if limit == 0 {
		return Result{Reason: "no container memory limit"}, nil
	}
	set := int64(float64(limit) * Share)
	debug.SetMemoryLimit(set)
	return Result{Container: limit, Set: set}, nil
}

// CgroupLimit returns the memory limit in bytes of the cgroup this process is in, the
// smallest set on it or any of its ancestors; 0 when none is set or cgroups are not there.
// Both cgroup v2 (memory.max) and v1 (memory.limit_in_bytes) are read. Levels whose files are
// missing are skipped: inside a container the hierarchy above its own cgroup is usually not
// visible, and its own cgroup is mounted as the root.
func CgroupLimit(fsys fs.FS) (int64, error) {
	data, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	v2, v1, err := ParseProcCgroup(data)
	if err != nil {
		return 0, err
	}
	if v1 != "" {
		if limit, found, err := smallest(fsys, "sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"); found || err != nil {
			return limit, err
		}
	}
	if v2 != "" {
		limit, _, err := smallest(fsys, "sys/fs/cgroup", v2, "memory.max")
		return limit, err
	}
	return 0, nil
}

// ParseProcCgroup reads /proc/self/cgroup: the cgroup v2 path (the "0::" line) and the path
// in the v1 memory hierarchy, each empty if absent.
func ParseProcCgroup(data []byte) (v2, v1 string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path; the path may itself hold colons.
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		switch {
		case id == "0" && controllers == "":
			v2 = p
		case hasController(controllers, "memory"):
			v1 = p
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	return v2, v1, nil
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// smallest walks from the cgroup at rel under mount up to the mount's root and returns the
// smallest limit found in file, and whether any level had the file at all.
func smallest(fsys fs.FS, mount, rel, file string) (limit int64, found bool, err error) {
	dir := path.Clean("/" + rel)
	for {
		p := path.Join(mount, dir, file)
		data, err := fs.ReadFile(fsys, p)
		switch {
		case err == nil:
			found = true
			v, err := ParseLimit(data)
			if err != nil {
				return 0, true, fmt.Errorf("/%s: %w", p, err)
			}
			if v > 0 && (limit == 0 || v < limit) {
				limit = v
			}
		case !errors.Is(err, fs.ErrNotExist):
			return 0, found, fmt.Errorf("reading /%s: %w", p, err)
		}
		if dir == "/" {
			return limit, found, nil
		}
		dir = path.Dir(dir)
	}
}

// ParseLimit reads a memory limit file: a byte count, or "max" (v2) or a value near LONG_MAX
// (v1) for none, returned as 0.
func ParseLimit(data []byte) (int64, error) {
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory limit %q is not a byte count or \"max\"", s)
	}
	if v >= unlimitedV1 {
		return 0, nil
	}
	return int64(v), nil
}

// System is the root file system for Apply and CgroupLimit.
func System() fs.FS { return os.DirFS("/") }
