package allocationsvc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/fault"
)

// TestSSHKeyAndCreateTextPolicy: key names and the ids a create names are
// held to core/text before any store sees them. Control characters and
// bidirectional overrides used to be stored in key names, and a NUL came
// back from Postgres as a 500.
func TestSSHKeyAndCreateTextPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := e.newMember(1000)
	bad := map[string]string{"NUL": "a\x00b", "ESC": "a\x1b[31mb", "BEL": "ding\a", "bidi override": "evil\u202etxt",
		"invalid UTF-8": "a\xffb", "over-long": strings.Repeat("k", 200)}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.AddSSHKey(ctx, m.p, v, ed25519Key(t))
			wantField(t, err, "name")
			_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: v})
			wantField(t, err, "sku_id")
			_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100", SSHKeyIDs: []string{v}})
			wantField(t, err, "ssh_key_ids")
		})
	}
	_, err := e.svc.AddSSHKey(ctx, m.p, "laptop", "a\x00"+ed25519Key(t))
	wantField(t, err, "public_key")
	keys, err := e.svc.ListSSHKeys(ctx, m.p)
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys after refused adds: %v, %v", keys, err)
	}
	// A pasted key keeps working: surrounding spaces and the trailing
	// newline are trimmed, a key comment is dropped.
	if _, err := e.svc.AddSSHKey(ctx, m.p, " laptop ", ed25519Key(t)+"\n"); err != nil {
		t.Fatalf("a pasted key: %v", err)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != fault.KindInvalid || fe.Field != field {
		t.Fatalf("err = %v, want invalid on field %s", err, field)
	}
}
