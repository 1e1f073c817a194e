// Package pgtest starts a throwaway PostgreSQL server for tests: a fresh cluster made by
// initdb in a temporary directory, listening on 127.0.0.1 on a free port, stopped and removed
// when the test ends. It needs the server binaries (initdb, pg_ctl); where they are missing
// the test is skipped with a message saying how to install them. .ci/run installs them.
//
// PostgreSQL refuses to run as root. When the tests run as root (as in CI), the cluster is
// made and run as the "postgres" user (created by the Debian package) through runuser.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// InstallHint says how to get the binaries.
const InstallHint = "install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install postgresql; they land in /usr/lib/postgresql/*/bin), or put initdb and pg_ctl on PATH"

// Server is one running throwaway cluster.
type Server struct {
	t       testing.TB
	bin     string
	dir     string // the data directory
	root    string // the temporary directory holding it, removed at cleanup
	port    int
	asUser  string // "postgres" when running as root, else ""
	stopped bool
}

// Start creates and starts a cluster, or skips the test when the binaries are missing. The
// server stops and its files go when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		t.Skipf("PostgreSQL not available (%v): %s", err, InstallHint)
	}
	s := &Server{t: t, bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Skipf("running as root and there is no postgres user to run PostgreSQL as: %s", InstallHint)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Skip("running as root and runuser is missing: PostgreSQL will not run as root")
		}
		s.asUser = "postgres"
	}
	// Not t.TempDir: its parents are private to root, and the postgres user must reach it.
	s.root, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(s.root) })
	s.dir = filepath.Join(s.root, "data")
	if s.asUser != "" {
		u, _ := user.Lookup(s.asUser)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.root, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	s.run("initdb", "-D", s.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	s.port = freePort(t)
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 20\nshared_buffers = 16MB\n", s.port, s.dir)
	f, err := os.OpenFile(filepath.Join(s.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// DSN is the connection string for the superuser on the default database.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", s.port)
}

// Start starts the (stopped) server and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.run("pg_ctl", "-D", s.dir, "-l", filepath.Join(s.root, "server.log"), "-w", "-t", "60", "start")
	s.stopped = false
}

// Stop stops the server (fast shutdown: connections are cut). Safe to call twice.
func (s *Server) Stop() {
	s.t.Helper()
	if s.stopped {
		return
	}
	s.run("pg_ctl", "-D", s.dir, "-m", "fast", "-w", "-t", "60", "stop")
	s.stopped = true
}

// Restart stops and starts the server, cutting every connection.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// DB opens a database/sql handle on the server, closed when the test ends.
func (s *Server) DB() *sql.DB {
	s.t.Helper()
	db, err := sql.Open("pgx", s.DSN())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs statements, failing the test on error. It retries briefly while the server is
// coming back after a restart.
func (s *Server) Exec(db *sql.DB, query string, args ...any) {
	s.t.Helper()
	var err error
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = db.ExecContext(ctx, query, args...)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("exec: %v", err)
}

func (s *Server) run(tool string, args ...string) {
	s.t.Helper()
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		logTail := ""
		if b, err := os.ReadFile(filepath.Join(s.root, "server.log")); err == nil {
			logTail = string(b[max(0, len(b)-2000):])
		}
		s.t.Fatalf("%s %v: %v\n%s\n%s", tool, args, err, out.String(), logTail)
	}
}

// binDir finds initdb and pg_ctl: on PATH, or in the newest /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
