package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// CodeBootstrapTokenInvalid is the one code for every refused bootstrap
// token: unknown, used, expired or malformed are not told apart, so a
// caller probing tokens learns nothing.
const CodeBootstrapTokenInvalid fault.Code = "bootstrap_token_invalid"

// BootstrapTokenStore implements [ports.BootstrapTokenStore] on
// node_bootstrap_tokens. Tokens arrive already hashed (SHA-256): the
// plaintext token is shown once to the admin and never stored.
type BootstrapTokenStore struct {
	db *DB
}

var _ ports.BootstrapTokenStore = (*BootstrapTokenStore)(nil)

// NewBootstrapTokenStore returns a BootstrapTokenStore.
func NewBootstrapTokenStore(db *DB) *BootstrapTokenStore { return &BootstrapTokenStore{db: db} }

// CreateBootstrapToken implements [ports.BootstrapTokenStore]. An unknown
// node is NotFound; a hash that exists already is a Conflict.
func (s *BootstrapTokenStore) CreateBootstrapToken(ctx context.Context, nodeID string, tokenHash []byte, expiresAt time.Time) error {
	if len(tokenHash) != sha256.Size {
		return fault.Invalid("token_hash", "a bootstrap token hash is a 32-byte SHA-256")
	}
	if expiresAt.IsZero() {
		return fault.Invalid("expires_at", "a bootstrap token needs an expiry")
	}
	id, ok := canonicalID(nodeID)
	if !ok {
		return fault.NotFound("node", nodeID)
	}
	_, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO node_bootstrap_tokens (token_hash, node_id, expires_at) VALUES ($1, $2, $3)`,
		tokenHash, id, expiresAt)
	switch {
	case err == nil:
		return nil
	case IsForeignKeyViolation(err):
		return fault.NotFound("node", nodeID).Wrap(err)
	case IsUniqueViolation(err, "node_bootstrap_tokens_pkey"):
		return fault.Conflict(fault.CodeConflict, "the bootstrap token already exists").Wrap(err)
	}
	return translate(err, "bootstrap token")
}

// ConsumeBootstrapToken implements [ports.BootstrapTokenStore] with one
// conditional UPDATE: the row lock it takes makes concurrent consumers of
// one token queue, and each re-checks used_at on the row version the first
// committed, so exactly one gets the node id. Everyone else — and every
// unknown, used or expired token — gets Unauthenticated
// bootstrap_token_invalid.
func (s *BootstrapTokenStore) ConsumeBootstrapToken(ctx context.Context, tokenHash []byte, now time.Time) (string, error) {
	invalid := fault.Unauthenticated(CodeBootstrapTokenInvalid, "the bootstrap token is invalid, expired or already used")
	if len(tokenHash) != sha256.Size {
		return "", invalid
	}
	var nodeID string
	err := s.db.Q(ctx).QueryRow(ctx, `
		UPDATE node_bootstrap_tokens SET used_at = $2
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING node_id::text`, tokenHash, now).Scan(&nodeID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", invalid
	}
	if err != nil {
		return "", translate(err, "bootstrap token")
	}
	return nodeID, nil
}

// NodeCertificateStore implements [ports.NodeCertificateStore] on
// node_certificates, plus revocation of a single serial (RevokeCertificate),
// which the built-in CA needs for Revoke(serial).
type NodeCertificateStore struct {
	db *DB
	n  *notifier
	// gen counts revocations seen through LISTEN (and every (re)connect of
	// the listener, when notifications may have been missed); listening
	// says whether the listener is connected right now.
	gen       atomic.Uint64
	listening atomic.Bool
}

var _ ports.NodeCertificateStore = (*NodeCertificateStore)(nil)

// nodeCertificateRevokedChannel is NOTIFYed by a trigger on every
// revocation (migration 0018).
const nodeCertificateRevokedChannel = "node_certificate_revoked"

// CertificateListenerName is the application_name of the revocation
// listener's connection.
const CertificateListenerName = "gpuaas-cert-revocations"

// NewNodeCertificateStore returns a NodeCertificateStore. Its revocation
// listener starts on the first RevocationGeneration call; Close stops it.
func NewNodeCertificateStore(db *DB) *NodeCertificateStore {
	s := &NodeCertificateStore{db: db}
	s.n = newNotifier(db, 30*time.Second, slog.New(slog.DiscardHandler), CertificateListenerName, nodeCertificateRevokedChannel)
	s.n.onListen = func() { s.gen.Add(1); s.listening.Store(true) }
	s.n.onNote = func() { s.gen.Add(1) }
	s.n.onLost = func() { s.listening.Store(false); s.gen.Add(1) }
	return s
}

// RevocationGeneration implements [ports.NodeCertificateStore]: it changes
// with every revocation any replica commits (a trigger NOTIFYs it) and
// whenever the listener reconnects; it is 0 while the listener is not
// connected, when nothing may be cached.
func (s *NodeCertificateStore) RevocationGeneration() uint64 {
	s.n.listen()
	if !s.listening.Load() {
		return 0
	}
	return s.gen.Load()
}

// Close stops the revocation listener.
func (s *NodeCertificateStore) Close() { s.n.close() }

// RecordCertificate implements [ports.NodeCertificateStore]. An unknown node
// is NotFound; a serial recorded before is a Conflict.
func (s *NodeCertificateStore) RecordCertificate(ctx context.Context, serial, nodeID string, notAfter time.Time) error {
	if serial == "" {
		return fault.Invalid("serial", "a certificate serial is required")
	}
	id, ok := canonicalID(nodeID)
	if !ok {
		return fault.NotFound("node", nodeID)
	}
	_, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO node_certificates (serial, node_id, not_after) VALUES ($1, $2, $3)`, serial, id, notAfter)
	switch {
	case err == nil:
		return nil
	case IsForeignKeyViolation(err):
		return fault.NotFound("node", nodeID).Wrap(err)
	case IsUniqueViolation(err, "node_certificates_pkey"):
		return fault.Conflict(fault.CodeConflict, "a certificate with this serial was already recorded").Wrap(err)
	}
	return translate(err, "node certificate")
}

// UseCertificate implements [ports.NodeCertificateStore] in one statement;
// a serial never recorded is NotFound (callers treat it as not trusted).
// The supersede is an UPDATE that matches nothing on every call but the
// first with a new certificate (node_certificates_node_idx finds the node's
// few rows).
func (s *NodeCertificateStore) UseCertificate(ctx context.Context, serial string, at time.Time) (string, bool, error) {
	var (
		nodeID  string
		revoked bool
	)
	err := s.db.Q(ctx).QueryRow(ctx, `
		WITH c AS (SELECT node_id, revoked_at, created_at FROM node_certificates WHERE serial = $1),
		superseded AS (
			UPDATE node_certificates o SET revoked_at = $2 FROM c
			WHERE c.revoked_at IS NULL AND o.node_id = c.node_id AND o.serial <> $1
				AND o.revoked_at IS NULL AND o.created_at < c.created_at
			RETURNING 1)
		SELECT node_id::text, revoked_at IS NOT NULL FROM c`, serial, at).
		Scan(&nodeID, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fault.NotFound("node certificate", serial)
	}
	if err != nil {
		return "", false, translate(err, "node certificate")
	}
	return nodeID, revoked, nil
}

// RevokeNodeCertificates implements [ports.NodeCertificateStore]: every
// certificate of the node not yet revoked is revoked at at. Revoking a node
// with none is not an error (idempotent).
func (s *NodeCertificateStore) RevokeNodeCertificates(ctx context.Context, nodeID string, at time.Time) error {
	id, ok := canonicalID(nodeID)
	if !ok {
		return nil
	}
	_, err := s.db.Q(ctx).Exec(ctx, `
		UPDATE node_certificates SET revoked_at = $2 WHERE node_id = $1 AND revoked_at IS NULL`, id, at)
	return translate(err, "node certificate")
}

// RevokeCertificate revokes one serial at at. An unknown serial is
// NotFound; one revoked before keeps its first revocation time.
func (s *NodeCertificateStore) RevokeCertificate(ctx context.Context, serial string, at time.Time) error {
	var found bool
	err := s.db.Q(ctx).QueryRow(ctx, `
		WITH upd AS (
			UPDATE node_certificates SET revoked_at = $2 WHERE serial = $1 AND revoked_at IS NULL RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM node_certificates WHERE serial = $1)`, serial, at).Scan(&found)
	if err != nil {
		return translate(err, "node certificate")
	}
	if !found {
		return fault.NotFound("node certificate", serial)
	}
	return nil
}
