package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunProductionRefuses: `psgw run --production` with an empty key file and no operator
// token exits 2 before opening anything, naming both, even though the configuration is also
// invalid for the plain run.
func TestRunProductionRefuses(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "lfpse-key")
	if err := os.WriteFile(key, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PSGW_DATA_DIR", filepath.Join(dir, "data"))
	t.Setenv("PSGW_NATIONAL_BASE_URL", "https://psims-uat.example")
	t.Setenv("PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE", key)
	var out, errb bytes.Buffer
	code := dispatch([]string{"run", "--production"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"refusing to start in production mode", "national.subscription_key_file: " + key + " is empty", "ops.tokens_file"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("the data directory was created (%v): a refused start must open nothing", err)
	}
}

// TestRunDemoRefusesANationalURL (H-014): `psgw run --demo` on a configuration naming a
// national service (https) exits 2 before opening anything, naming national.base_url,
// rather than sending its incidents to the simulator with only a warning.
func TestRunDemoRefusesANationalURL(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PSGW_DATA_DIR", filepath.Join(dir, "data"))
	t.Setenv("PSGW_NATIONAL_BASE_URL", "https://psims-uat.example")
	t.Setenv("PSGW_NATIONAL_SUBSCRIPTION_KEY", "a-real-key")
	var out, errb bytes.Buffer
	if code := dispatch([]string{"run", "--demo"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"refusing --demo", "national.base_url names a national service", "run without --demo"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("the data directory was created (%v): a refused start must open nothing", err)
	}
}
