package services

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// A service not answering where the GPUAAS_TEST_* variable or the default
// port says is started in a container when a Docker engine is there, once
// per test process (testcontainers' reaper removes it afterwards). Without
// an engine the caller skips loudly, or fails under
// GPUAAS_REQUIRE_SERVICES=1.

type containerSpec struct {
	image string
	port  string // e.g. "5432/tcp"
	env   map[string]string
	cmd   []string
	wait  wait.Strategy
}

var specs = map[string]containerSpec{
	"postgres": {image: "postgres:16-alpine", port: "5432/tcp",
		env:  map[string]string{"POSTGRES_HOST_AUTH_METHOD": "trust"},
		wait: wait.ForLog("database system is ready to accept connections").WithOccurrence(2)},
	"redis": {image: "redis:7-alpine", port: "6379/tcp", wait: wait.ForListeningPort("6379/tcp")},
	"nats":  {image: "nats:2.10-alpine", port: "4222/tcp", cmd: []string{"-js"}, wait: wait.ForListeningPort("4222/tcp")},
}

var (
	containersMu sync.Mutex
	endpoints    = map[string]string{} // service → host:port, or "" after a failed start
	startErrs    = map[string]error{}
)

// dockerAvailable reports whether a Docker engine may be reachable.
func dockerAvailable() bool {
	if os.Getenv("DOCKER_HOST") != "" {
		return true
	}
	for _, sock := range []string{"/var/run/docker.sock", os.ExpandEnv("$HOME/.docker/run/docker.sock")} {
		if _, err := os.Stat(sock); err == nil {
			return true
		}
	}
	return false
}

// containerEndpoint starts (once) a container for service and returns its
// host:port, or an error saying why there is none.
func containerEndpoint(service string) (string, error) {
	containersMu.Lock()
	defer containersMu.Unlock()
	if ep, ok := endpoints[service]; ok {
		return ep, startErrs[service]
	}
	if !dockerAvailable() {
		return "", errors.New("no Docker engine for testcontainers")
	}
	spec := specs[service]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := []testcontainers.ContainerCustomizer{testcontainers.WithExposedPorts(spec.port),
		testcontainers.WithWaitStrategy(spec.wait)}
	if len(spec.env) > 0 {
		opts = append(opts, testcontainers.WithEnv(spec.env))
	}
	if len(spec.cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(spec.cmd...))
	}
	c, err := testcontainers.Run(ctx, spec.image, opts...)
	if err == nil {
		var ep string
		ep, err = c.PortEndpoint(ctx, spec.port, "")
		endpoints[service] = ep
	}
	if err != nil {
		endpoints[service] = ""
		err = fmt.Errorf("testcontainers: %s: %w", spec.image, err)
	}
	startErrs[service] = err
	return endpoints[service], err
}

// resolve returns the address of service: the configured one when it
// answers, else a container's.
func resolve(tb testing.TB, service, configured string) string {
	tb.Helper()
	if err := Reachable(configured); err == nil {
		return configured
	} else if ep, cerr := containerEndpoint(service); cerr == nil {
		return ep
	} else {
		Unavailable(tb, service, fmt.Errorf("%v; %v", err, cerr))
	}
	return ""
}

// Redis returns host:port of a Redis for the test.
func Redis(tb testing.TB) string {
	tb.Helper()
	return resolve(tb, "redis", RedisAddr())
}

// NATS returns the URL of a NATS server with JetStream for the test.
func NATS(tb testing.TB) string {
	tb.Helper()
	return "nats://" + resolve(tb, "nats", strings.TrimPrefix(NATSURL(), "nats://"))
}
