// Package dirlock keeps one psgw per data directory. Two gateways writing one embedded
// JetStream store corrupt each other's view of it: both answer 202, and after a restart an
// incident one of them acknowledged can be gone (issue 13). The lock is an flock on a file in
// the directory, which the kernel releases when the holder dies however it dies, so a gateway
// killed with SIGKILL never leaves a lock that blocks its restart (docs/delivery.md, "One
// gateway per data directory").
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FileName is the lock file inside the data directory.
const FileName = "psgw.lock"

// ErrLocked is wrapped by the error Acquire returns when another process holds the lock.
var ErrLocked = errors.New("data directory in use by another psgw")

// HeldError says which directory is locked and by whom.
type HeldError struct {
	Dir string
	// PID is the holder's process id as it wrote it, 0 if it could not be read.
	PID int
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data_dir %s is in use by another psgw (%s holds %s); one gateway per data directory: stop that one, or give this one its own data_dir",
		e.Dir, who, filepath.Join(e.Dir, FileName))
}

func (e *HeldError) Unwrap() error { return ErrLocked }

// Lock is a held directory lock. Release it when the gateway stops.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and takes its lock without waiting, writing this process's id
// in the lock file. It fails with a *HeldError when another process holds it.
func Acquire(dir string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving data_dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("creating data_dir: %w", err)
	}
	path := filepath.Join(abs, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening the data_dir lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Dir: abs, PID: readPID(path)}
		}
		return nil, fmt.Errorf("locking data_dir %s: %w", abs, err)
	}
	// The pid is for the message a second gateway gives; the lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Release gives the lock up. The file stays: removing it would let a third process lock a
// new file while a second still waits on the old one.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
}
