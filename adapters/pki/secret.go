package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/gpuaas/gpuaas/core/envelope"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// vault reads and writes sealed key material by name. The secret's name is
// the envelope's context, so one stored key cannot be swapped for another.
type vault struct {
	kms     ports.KMS
	secrets ports.SecretStore
}

// loadOrCreate returns the plaintext stored under name, creating it with
// generate when absent. Concurrent first starts race on a write-once
// PutSecret: the loser's generated value is dropped and it reads the
// winner's, so every process ends up with the same key.
func (v vault) loadOrCreate(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error) {
	for attempt := 0; attempt < 3; attempt++ {
		sealed, err := v.secrets.GetSecret(ctx, name)
		if err == nil {
			pt, err := envelope.Open(ctx, v.kms, sealed, []byte(name))
			if err != nil {
				return nil, fmt.Errorf("pki: secret %s: %w", name, err)
			}
			return pt, nil
		}
		if !fault.IsKind(err, fault.KindNotFound) {
			return nil, err
		}
		pt, err := generate()
		if err != nil {
			return nil, err
		}
		sealed, err = envelope.Seal(ctx, v.kms, pt, []byte(name))
		if err != nil {
			return nil, err
		}
		err = v.secrets.PutSecret(ctx, name, sealed)
		if err == nil {
			return pt, nil
		}
		if !fault.IsKind(err, fault.KindConflict) {
			return nil, err
		}
		// Another process stored it first: read theirs.
	}
	return nil, fmt.Errorf("pki: secret %s: could neither read nor create it", name)
}

// loadKey returns the private key stored sealed under name as a PKCS#8
// PEM block, making it with generate on the very first start. what names
// the key in errors.
func (v vault) loadKey(ctx context.Context, name, what string, generate func() (any, error)) (any, error) {
	b, err := v.loadOrCreate(ctx, name, func() ([]byte, error) {
		k, err := generate()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, err
	}
	defer wipe(b)
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("pki: stored %s is not a PKCS#8 PEM block", what)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: stored %s: %w", what, err)
	}
	return k, nil
}

// keyPair is a certificate with its private key, as stored: PEM
// "CERTIFICATE" followed by PKCS#8 "PRIVATE KEY".
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func encodeKeyPair(certDER []byte, key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...), nil
}

func decodeKeyPair(b []byte) (keyPair, error) {
	cb, rest := pem.Decode(b)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return keyPair{}, errors.New("pki: stored key pair lacks its certificate")
	}
	kb, _ := pem.Decode(rest)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return keyPair{}, errors.New("pki: stored key pair lacks its private key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return keyPair{}, fmt.Errorf("pki: stored certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return keyPair{}, fmt.Errorf("pki: stored private key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return keyPair{}, fmt.Errorf("pki: stored private key is a %T", k)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return keyPair{}, errors.New("pki: stored private key does not match its certificate")
	}
	return keyPair{cert: cert, key: signer}, nil
}
