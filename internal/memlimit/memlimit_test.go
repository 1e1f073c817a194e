package memlimit

import (
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

func files(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

func TestCgroupLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want int64
	}{
		{"v2 in a container: its own cgroup mounted as the root",
			files("proc/self/cgroup", "0::/\n", "sys/fs/cgroup/memory.max", "536870912\n"), 512 << 20},
		{"v2 without a limit",
			files("proc/self/cgroup", "0::/\n", "sys/fs/cgroup/memory.max", "max\n"), 0},
		{"v2 on the host: the smallest limit on the way up wins",
			files("proc/self/cgroup", "0::/system.slice/psgw.service\n",
				"sys/fs/cgroup/system.slice/psgw.service/memory.max", "max\n",
				"sys/fs/cgroup/system.slice/memory.max", "1073741824\n"), 1 << 30},
		{"v2: a child's limit below its parent's",
			files("proc/self/cgroup", "0::/a/b\n",
				"sys/fs/cgroup/a/b/memory.max", "268435456\n",
				"sys/fs/cgroup/a/memory.max", "1073741824\n"), 256 << 20},
		{"v1 in a container: the path names a cgroup not visible inside it",
			files("proc/self/cgroup", "12:pids:/docker/abc\n4:memory:/docker/abc\n0::/\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes", "419430400\n"), 400 << 20},
		{"v1 without a limit (LONG_MAX rounded to a page), as on this machine",
			files("proc/self/cgroup", "4:memory:/process_api/d7e5\n",
				"sys/fs/cgroup/memory/process_api/d7e5/memory.limit_in_bytes", "9223372036854771712\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"), 0},
		{"v1 with controllers sharing a hierarchy",
			files("proc/self/cgroup", "3:cpu,memory:/x\n",
				"sys/fs/cgroup/memory/x/memory.limit_in_bytes", "1000000\n"), 1000000},
		{"no cgroups at all", files(), 0},
		{"a cgroup with no memory files", files("proc/self/cgroup", "0::/a\n"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CgroupLimit(tc.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCgroupLimitBadFile(t *testing.T) {
	_, err := CgroupLimit(files("proc/self/cgroup", "0::/\n", "sys/fs/cgroup/memory.max", "lots\n"))
	if err == nil || !strings.Contains(err.Error(), "/sys/fs/cgroup/memory.max") || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("got %v, want an error naming the file and the value", err)
	}
}

func TestApply(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	container := files("proc/self/cgroup", "0::/\n", "sys/fs/cgroup/memory.max", "1000000000\n")

	r, err := Apply(container, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if r.Container != 1e9 || r.Set != 9e8 || r.Reason != "" {
		t.Errorf("got %+v, want a limit of 900000000 from a container's 1000000000", r)
	}
	if got := debug.SetMemoryLimit(-1); got != 9e8 {
		t.Errorf("runtime limit %d, want 900000000", got)
	}

	debug.SetMemoryLimit(1 << 40)
	r, err = Apply(container, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "off"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Set != 0 || !strings.Contains(r.Reason, "GOMEMLIMIT") {
		t.Errorf("got %+v, want the operator's GOMEMLIMIT left alone", r)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("runtime limit changed to %d despite GOMEMLIMIT", got)
	}

	r, err = Apply(files("proc/self/cgroup", "0::/\n", "sys/fs/cgroup/memory.max", "max\n"), func(string) string { return "" })
	if err != nil || r.Set != 0 || r.Reason == "" {
		t.Errorf("got %+v, %v; want no limit and a reason", r, err)
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{"0::/\n", "4:memory:/docker/abc\n0::/x\n", "3:cpu,memory:/a:b\n", "", ":::", "0::\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v2, v1, err := ParseProcCgroup(data)
		if err != nil {
			return
		}
		for _, p := range []string{v2, v1} {
			if p != "" && !strings.HasPrefix(p, "/") {
				t.Errorf("path %q does not start at the root", p)
			}
		}
		// Whatever the paths, walking them must stay inside the mount.
		fsys := fstest.MapFS{"proc/self/cgroup": &fstest.MapFile{Data: data}}
		if _, err := CgroupLimit(fsys); err != nil && !strings.Contains(err.Error(), "cgroup") {
			t.Errorf("unexpected error %v", err)
		}
	})
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max\n", "536870912\n", "9223372036854771712", "-1", "", "18446744073709551615"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseLimit(data)
		if err == nil && v < 0 {
			t.Errorf("negative limit %d from %q", v, data)
		}
	})
}
