package queue

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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
