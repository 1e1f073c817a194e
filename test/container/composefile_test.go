package container

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeFileHasNoRepeatedKeys: YAML keeps the last of two equal keys, so a service
// defined twice (the cluster profile once re-used the demo's `lfpse-sim`) silently replaces
// the first, and `docker-compose --profile demo up` then failed on a simulator outside its
// profile. A strict decode refuses a repeated key; it needs no Docker engine.
func TestComposeFileHasNoRepeatedKeys(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	services, _ := doc["services"].(map[string]any)
	for _, name := range []string{"psgw-demo", "lfpse-sim", "psgw", "psgw-1", "psgw-2", "cluster-sim"} {
		if services[name] == nil {
			t.Errorf("service %s missing", name)
		}
	}
}
