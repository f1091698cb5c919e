package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are packages the core must never reach, directly or not.
var forbidden = []string{
	"github.com/jackc/", "go.uber.org/fx", "go.uber.org/dig", "github.com/nats-io/", "go.temporal.io/",
	"github.com/stripe/", "connectrpc.com/", "github.com/aws/", "github.com/redis/", "github.com/gorilla/",
	"github.com/coreos/go-oidc", "github.com/zitadel/", "google.golang.org/grpc",
	"github.com/gpuaas/gpuaas/adapters/", "github.com/gpuaas/gpuaas/hosts/",
}

var forbiddenStd = map[string]bool{"net/http": true, "database/sql": true, "os/exec": true}

func TestCoreImportsNoInfrastructure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/gpuaas/gpuaas/core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if forbiddenStd[dep] {
			t.Errorf("core reaches %s", dep)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("core reaches %s", dep)
			}
		}
	}
}
