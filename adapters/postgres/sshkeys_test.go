package postgres_test

import (
	"context"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

func TestSSHKeyStore(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	a, b := seedOwner(t, db), seedOwner(t, db)
	s := postgres.NewSSHKeyStore(db)
	k := ports.SSHKey{ID: newUUID(), UserID: a.UserID, Name: "laptop", PublicKey: "ssh-ed25519 AAAA", Fingerprint: "SHA256:abc", KeyType: "ssh-ed25519"}
	if err := s.AddSSHKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	dupFP := k
	dupFP.ID, dupFP.Name = newUUID(), "other"
	err := s.AddSSHKey(ctx, dupFP)
	wantCode(t, err, fault.KindConflict, "ssh_key_duplicate")
	if f := fault.From(err).Field; f != "public_key" { // a form shows it at that input
		t.Fatalf("duplicate key's field %q", f)
	}
	dupName := k
	dupName.ID, dupName.Fingerprint = newUUID(), "SHA256:def"
	err = s.AddSSHKey(ctx, dupName)
	wantCode(t, err, fault.KindConflict, "ssh_key_name_taken")
	if f := fault.From(err).Field; f != "name" {
		t.Fatalf("taken name's field %q", f)
	}
	// Another user may register the same key.
	other := k
	other.ID, other.UserID = newUUID(), b.UserID
	if err := s.AddSSHKey(ctx, other); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSSHKeys(ctx, a.UserID)
	if err != nil || len(list) != 1 || list[0].ID != k.ID || list[0].Fingerprint != "SHA256:abc" || list[0].CreatedAt.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	// b cannot delete a's key; a can, once.
	wantCode(t, s.DeleteSSHKey(ctx, b.UserID, k.ID), fault.KindNotFound, "")
	if err := s.DeleteSSHKey(ctx, a.UserID, k.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteSSHKey(ctx, a.UserID, k.ID), fault.KindNotFound, "")
	wantCode(t, s.AddSSHKey(ctx, ports.SSHKey{ID: newUUID(), UserID: newUUID(), Name: "x", PublicKey: "p", Fingerprint: "f", KeyType: "t"}),
		fault.KindNotFound, "")
}
