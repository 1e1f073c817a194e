package dockertest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PsgwImage returns the tag of a psgw image built from this working tree the way
// deploy/build-image.sh builds it (deploy/build-rootfs.sh, then the Dockerfile's `prebuilt`
// target), building it first if the engine does not have one for this exact tree. The tag
// carries a hash of every Go file but tests, go.mod, go.sum, the Dockerfile and deploy/, so a change
// to any of them builds a new image, and an unchanged tree reuses the last one.
func PsgwImage(t testing.TB) string {
	t.Helper()
	Require(t)
	tag, err := images.get("psgw", buildPsgwImage)
	if err != nil {
		t.Fatalf("building the psgw image: %v", err)
	}
	return tag
}

func buildPsgwImage() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	files, err := imageInputs(root)
	if err != nil {
		return "", err
	}
	sum, err := fileHash(files...)
	if err != nil {
		return "", err
	}
	tag := "psgw-test/psgw:" + sum
	// Test binaries of several packages may want the image at once: one builds, the others
	// wait for it and find the tag.
	unlock, err := lockFile(filepath.Join(os.TempDir(), "psgw-test-image.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if imageExists(ctx, tag) {
		return tag, nil
	}
	dir, err := os.MkdirTemp("", "psgw-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "dist", "rootfs")
	cmd := exec.CommandContext(ctx, filepath.Join(root, "deploy", "build-rootfs.sh"), rootfs)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION=test-"+sum)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("deploy/build-rootfs.sh: %v: %s", err, out)
	}
	for _, f := range []string{"Dockerfile", "deploy/volume/README.txt"} {
		if err := copyFile(filepath.Join(root, f), filepath.Join(dir, f)); err != nil {
			return "", err
		}
	}
	if err := dockerBuild(ctx, dir, tag, "--target", "prebuilt"); err != nil {
		return "", err
	}
	return tag, nil
}

// imageInputs lists, sorted, every file whose change must give a new image.
func imageInputs(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch {
			case rel == ".git", rel == "dist", rel == "data", strings.HasPrefix(d.Name(), "."), d.Name() == "testdata":
				if rel != "." {
					return filepath.SkipDir
				}
			}
			return nil
		}
		// A test file is not compiled into psgw: editing a test builds no new image.
		if strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		if strings.HasSuffix(rel, ".go") || strings.HasPrefix(rel, "deploy/") ||
			rel == "go.mod" || rel == "go.sum" || rel == "Dockerfile" ||
			strings.Contains(rel, "/web/") || strings.Contains(rel, "/data/") {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// lockFile takes an exclusive advisory lock on path, shared by every process on the machine.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
