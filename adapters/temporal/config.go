package temporal

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"go.temporal.io/sdk/interceptor"
)

// Defaults for Config.
const (
	DefaultNamespace = "default"
	DefaultTaskQueue = "gpuaas-provisioning"
)

// Config says where the Temporal frontend is and which namespace and task
// queue the platform uses.
type Config struct {
	// HostPort of the frontend gRPC service, e.g. "127.0.0.1:7233".
	HostPort string
	// Namespace; default "default".
	Namespace string
	// TaskQueue the provisioning workflows and activities run on; default
	// "gpuaas-provisioning".
	TaskQueue string
	// Identity names this process in Temporal's history; default set by the SDK.
	Identity string
	// RPCTimeout bounds one Start, Signal or health call; default 10s.
	RPCTimeout time.Duration
	// Logger receives the SDK's logs; default slog.Default().
	Logger *slog.Logger
	// Interceptors are the client's interceptors; those that also intercept
	// workers (OpenTelemetry's tracing interceptor does) apply to the
	// worker built on this client too. Hosts add tracing here.
	Interceptors []interceptor.ClientInterceptor
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.HostPort == "" {
		return errors.New("temporal: HostPort is required")
	}
	host, port, err := net.SplitHostPort(c.HostPort)
	if err != nil || host == "" {
		return fmt.Errorf("temporal: HostPort %q is not host:port", c.HostPort)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("temporal: HostPort %q has no valid port", c.HostPort)
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.TaskQueue == "" {
		c.TaskQueue = DefaultTaskQueue
	}
	if c.RPCTimeout < 0 {
		return errors.New("temporal: RPCTimeout must not be negative")
	}
	if c.RPCTimeout == 0 {
		c.RPCTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
