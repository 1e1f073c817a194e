package queue

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// LockFile is the file in the data directory that the process using it holds locked.
const LockFile = "psgw.lock"

// ErrDataDirInUse means another process (a running psgw, or `psgw restore`) has the data
// directory open: two embedded servers on one store would corrupt it.
var ErrDataDirInUse = errors.New("data directory is in use by another psgw process")

// lockDataDir takes an exclusive lock on the data directory, which the kernel drops when
// the process ends however it ends, so a kill -9 never leaves it locked.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("locking data dir: %w", err)
	}
	return f, nil
}

func unlockDataDir(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}

// AdminTokenFile is the file in the data directory holding the token of the embedded
// server's admin port (queue.admin_addr), made afresh at each start, readable by psgw's
// user only, and read by `psgw backup` beside it.
const AdminTokenFile = "admin-token"

// NewAdminToken makes a random token and writes it to the data directory's AdminTokenFile.
func NewAdminToken(dataDir string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("creating data dir: %w", err)
	}
	p := filepath.Join(dataDir, AdminTokenFile)
	tmp := p + ".tmp"
	if err := writeFileSync(tmp, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("writing %s: %w", AdminTokenFile, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("writing %s: %w", AdminTokenFile, err)
	}
	return tok, nil
}

// ReadAdminToken reads the token a running psgw wrote to its data directory.
func ReadAdminToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
