package dockertest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Docker runs the docker CLI and returns its output, stdout and stderr, trimmed. A command
// that takes more than three minutes is killed.
func Docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Published is the loopback address ("127.0.0.1:PORT") the engine publishes a container's
// port on. A container publishes new ports each time it starts, and none while it is
// stopped, so it is read afresh each time.
func Published(container, port string) (string, error) {
	out, err := Docker("port", container, port)
	if err != nil {
		return "", fmt.Errorf("docker port %s %s: %v: %s", container, port, err, out)
	}
	if out == "" {
		return "", fmt.Errorf("docker port %s %s: not published", container, port)
	}
	line := strings.Split(out, "\n")[0]
	return strings.Replace(line, "0.0.0.0", "127.0.0.1", 1), nil
}
