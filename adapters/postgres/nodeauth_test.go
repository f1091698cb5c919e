package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// insertEnrolmentNode adds a node row directly, so these tests depend only
// on the schema and not on the node store's API.
func insertEnrolmentNode(t *testing.T, db *postgres.DB) string {
	t.Helper()
	id := newTestID()
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port)
		VALUES ($1, $2, 'h100-80g-x1', 'enrolling', '127.0.0.1', 22)`, id, "node-"+id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func tokenHash(t *testing.T) []byte {
	t.Helper()
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(tok)
	return h[:]
}

func wantFault(t *testing.T, err error, kind fault.Kind, code fault.Code) {
	t.Helper()
	f := fault.From(err)
	if err == nil || f.Kind != kind || f.Code != code {
		t.Fatalf("err = %v; want %s/%s", err, kind, code)
	}
}

func TestSecretStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	s := postgres.NewSecretStore(db)

	if err := s.PutSecret(ctx, "pki/root", []byte("sealed-1")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSecret(ctx, "pki/root")
	if err != nil || string(got) != "sealed-1" {
		t.Fatalf("GetSecret = %q, %v", got, err)
	}
	// A second put is refused and leaves the first envelope in place.
	wantFault(t, s.PutSecret(ctx, "pki/root", []byte("sealed-2")), fault.KindConflict, postgres.CodeSecretExists)
	if got, _ := s.GetSecret(ctx, "pki/root"); string(got) != "sealed-1" {
		t.Fatalf("after refused put: %q", got)
	}
	_, err = s.GetSecret(ctx, "absent")
	wantFault(t, err, fault.KindNotFound, fault.CodeNotFound)
	wantFault(t, s.PutSecret(ctx, "", []byte("x")), fault.KindInvalid, fault.CodeValidationFailed)
	wantFault(t, s.PutSecret(ctx, string(bytes.Repeat([]byte("n"), 201)), []byte("x")), fault.KindInvalid, fault.CodeValidationFailed)
	wantFault(t, s.PutSecret(ctx, "empty", nil), fault.KindInvalid, fault.CodeValidationFailed)

	// A put in a rolled-back transaction leaves nothing behind.
	boom := errors.New("boom")
	err = db.InTx(ctx, func(ctx context.Context) error {
		if err := s.PutSecret(ctx, "rolled-back", []byte("x")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	_, err = s.GetSecret(ctx, "rolled-back")
	wantFault(t, err, fault.KindNotFound, fault.CodeNotFound)
}

// Concurrent first puts under one name: exactly one wins, and the stored
// envelope is the winner's.
func TestSecretStorePutRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	s := postgres.NewSecretStore(db)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.PutSecret(ctx, "race", []byte(fmt.Sprint("value-", i)))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("two puts won: %d and %d", winner, i)
		case err == nil:
			winner = i
		default:
			wantFault(t, err, fault.KindConflict, postgres.CodeSecretExists)
		}
	}
	got, err := s.GetSecret(ctx, "race")
	if winner < 0 || err != nil || string(got) != fmt.Sprint("value-", winner) {
		t.Fatalf("winner %d, stored %q, %v", winner, got, err)
	}
}

func TestBootstrapTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	s := postgres.NewBootstrapTokenStore(db)
	node := insertEnrolmentNode(t, db)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	good, used, expired := tokenHash(t), tokenHash(t), tokenHash(t)
	for _, h := range [][]byte{good, used} {
		if err := s.CreateBootstrapToken(ctx, node, h, now.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBootstrapToken(ctx, node, expired, now); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ConsumeBootstrapToken(ctx, used, now); err != nil || got != node {
		t.Fatalf("first consume = %q, %v", got, err)
	}

	// Creation refusals.
	wantFault(t, s.CreateBootstrapToken(ctx, node, good, now.Add(time.Hour)), fault.KindConflict, fault.CodeConflict)
	wantFault(t, s.CreateBootstrapToken(ctx, newTestID(), tokenHash(t), now.Add(time.Hour)), fault.KindNotFound, fault.CodeNotFound)
	wantFault(t, s.CreateBootstrapToken(ctx, "not-a-uuid", tokenHash(t), now.Add(time.Hour)), fault.KindNotFound, fault.CodeNotFound)
	wantFault(t, s.CreateBootstrapToken(ctx, node, []byte("short"), now.Add(time.Hour)), fault.KindInvalid, fault.CodeValidationFailed)

	tests := []struct {
		name string
		hash []byte
		now  time.Time
	}{
		{"reused", used, now},
		{"expired exactly at expiry", expired, now},
		{"expired later", expired, now.Add(time.Minute)},
		{"good but past expiry", good, now.Add(30 * time.Minute)},
		{"unknown", tokenHash(t), now},
		{"malformed", []byte("x"), now},
		{"empty", nil, now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ConsumeBootstrapToken(ctx, tc.hash, tc.now)
			if got != "" {
				t.Fatalf("consumed: node %q", got)
			}
			wantFault(t, err, fault.KindUnauthenticated, postgres.CodeBootstrapTokenInvalid)
		})
	}
	// The refusal at expiry did not burn the token: it still works before.
	if got, err := s.ConsumeBootstrapToken(ctx, good, now.Add(30*time.Minute-time.Microsecond)); err != nil || got != node {
		t.Fatalf("good token = %q, %v", got, err)
	}

	// A consume inside a transaction that rolls back leaves the token usable.
	again := tokenHash(t)
	if err := s.CreateBootstrapToken(ctx, node, again, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("enrolment failed after consuming")
	err := db.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.ConsumeBootstrapToken(ctx, again, now); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got, err := s.ConsumeBootstrapToken(ctx, again, now); err != nil || got != node {
		t.Fatalf("after rollback = %q, %v", got, err)
	}
}

// 32 agents race one token: exactly one gets the node id, every other one
// is refused with the same code as an unknown token.
func TestBootstrapTokenRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	s := postgres.NewBootstrapTokenStore(db)
	node := insertEnrolmentNode(t, db)
	now := time.Now()
	h := tokenHash(t)
	if err := s.CreateBootstrapToken(ctx, node, h, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	const racers = 32
	nodes := make([]string, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			nodes[i], errs[i] = s.ConsumeBootstrapToken(ctx, h, now)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i := range racers {
		if errs[i] == nil {
			won++
			if nodes[i] != node {
				t.Fatalf("winner got node %q; want %q", nodes[i], node)
			}
			continue
		}
		if nodes[i] != "" {
			t.Fatalf("loser %d got node %q", i, nodes[i])
		}
		wantFault(t, errs[i], fault.KindUnauthenticated, postgres.CodeBootstrapTokenInvalid)
	}
	if won != 1 {
		t.Fatalf("%d racers consumed the token; want exactly 1", won)
	}
}

func TestNodeCertificates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	s := postgres.NewNodeCertificateStore(db)
	nodeA, nodeB := insertEnrolmentNode(t, db), insertEnrolmentNode(t, db)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// In order: a certificate's use supersedes the node's older ones.
	for _, c := range [][2]string{{"a1", nodeA}, {"a2", nodeA}, {"b1", nodeB}} {
		if err := s.RecordCertificate(ctx, c[0], c[1], at.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	wantFault(t, s.RecordCertificate(ctx, "a1", nodeB, at), fault.KindConflict, fault.CodeConflict)
	wantFault(t, s.RecordCertificate(ctx, "x", newTestID(), at), fault.KindNotFound, fault.CodeNotFound)
	wantFault(t, s.RecordCertificate(ctx, "", nodeA, at), fault.KindInvalid, fault.CodeValidationFailed)

	status := func(serial string) (string, bool) {
		t.Helper()
		n, r, err := s.UseCertificate(ctx, serial, at)
		if err != nil {
			t.Fatalf("status %s: %v", serial, err)
		}
		return n, r
	}
	if n, r := status("a1"); n != nodeA || r {
		t.Fatalf("a1 = %s revoked=%v", n, r)
	}
	_, _, err := s.UseCertificate(ctx, "unknown", at)
	wantFault(t, err, fault.KindNotFound, fault.CodeNotFound)

	// One serial: only it is revoked; again is fine; unknown is NotFound.
	if err := s.RevokeCertificate(ctx, "a1", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCertificate(ctx, "a1", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantFault(t, s.RevokeCertificate(ctx, "unknown", at), fault.KindNotFound, fault.CodeNotFound)
	if _, r := status("a1"); !r {
		t.Fatal("a1 not revoked")
	}
	if _, r := status("a2"); r {
		t.Fatal("a2 revoked along with a1")
	}
	var revokedAt time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT revoked_at FROM node_certificates WHERE serial = 'a1'`).Scan(&revokedAt); err != nil || !revokedAt.Equal(at) {
		t.Fatalf("a1 revoked_at = %v, %v; want the first revocation %v", revokedAt, err, at)
	}

	// The whole node: every certificate of A, none of B.
	if err := s.RevokeNodeCertificates(ctx, nodeA, at); err != nil {
		t.Fatal(err)
	}
	if _, r := status("a2"); !r {
		t.Fatal("a2 not revoked with its node")
	}
	if _, r := status("b1"); r {
		t.Fatal("b1 revoked with another node")
	}
	if err := s.RevokeNodeCertificates(ctx, newTestID(), at); err != nil {
		t.Fatalf("revoking a node without certificates: %v", err)
	}

	// A renewal: b2 is issued after b1; b1 works until b2 is first used,
	// then it is superseded (revoked) and b2 is not.
	if err := s.RecordCertificate(ctx, "b2", nodeB, at.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, r := status("b1"); r {
		t.Fatal("b1 revoked before b2 was used")
	}
	if _, r := status("b2"); r {
		t.Fatal("b2 revoked on its first use")
	}
	if _, r := status("b1"); !r {
		t.Fatal("b1 still valid after b2 was used")
	}
	if _, r := status("b2"); r {
		t.Fatal("b2 revoked by its own later use")
	}
}

func TestSecurityModuleValidates(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(postgres.Module, postgres.SecurityModule,
		fx.Supply(postgres.Config{URL: "postgres://postgres@127.0.0.1:5432/none?sslmode=disable"}),
		fx.Invoke(func(ports.SecretStore, ports.BootstrapTokenStore, ports.NodeCertificateStore, *postgres.NodeCertificateStore) {
		}))
	if err != nil {
		t.Fatal(err)
	}
}
