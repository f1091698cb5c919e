package keyfile

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// KMSConfig configures the local-file KMS.
type KMSConfig struct {
	// Path of the key file: exactly 32 random bytes, mode 0600.
	Path string
	// NoCreate refuses to start when the file is missing instead of
	// creating a new key (production: a lost key must not be silently
	// replaced by a fresh one that opens none of the stored secrets).
	NoCreate bool
}

// CheckAndSetDefaults validates the config.
func (c *KMSConfig) CheckAndSetDefaults() error {
	if c.Path == "" {
		return errors.New("keyfile: KMS key Path is required")
	}
	return nil
}

// KMS implements [ports.KMS] with an AES-256 key from a local file. It wraps
// data keys as nonce || AES-256-GCM(data key), with the key id as
// additional data.
type KMS struct {
	keyID string
	aead  cipher.AEAD
}

var _ ports.KMS = (*KMS)(nil)

// kmsKeyLen is the key file's exact size: AES-256.
const kmsKeyLen = 32

// NewKMS loads the key file, creating it on first use unless NoCreate.
func NewKMS(cfg KMSConfig) (*KMS, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	key, err := loadOrCreate(cfg.Path, !cfg.NoCreate, func() ([]byte, error) {
		k := make([]byte, kmsKeyLen)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("keyfile: KMS key: %w", err)
	}
	defer wipe(key)
	return newKMSFromKey(key)
}

func newKMSFromKey(key []byte) (*KMS, error) {
	if len(key) != kmsKeyLen {
		return nil, fmt.Errorf("keyfile: KMS key file must hold exactly %d bytes, it holds %d", kmsKeyLen, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &KMS{keyID: kmsKeyID(key), aead: aead}, nil
}

// kmsKeyID names a key by a domain-separated hash of it: stable across
// restarts, different for every key, and useless for recovering the key.
func kmsKeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("gpuaas-keyfile-kms-key-id-v1\x00"))
	h.Write(key)
	return "keyfile:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// KeyID implements [ports.KMS].
func (k *KMS) KeyID() string { return k.keyID }

// Encrypt implements [ports.KMS].
func (k *KMS) Encrypt(_ context.Context, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fault.Internal(err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, []byte(k.keyID)), nil
}

// Decrypt implements [ports.KMS]. A ciphertext made under another key id is
// refused before any decryption is tried.
func (k *KMS) Decrypt(_ context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	if keyID != k.keyID {
		return nil, fault.New(fault.KindInternal, "kms_key_unknown", "the data key was wrapped by a key this KMS does not hold").
			With("key_id", keyID)
	}
	ns := k.aead.NonceSize()
	if len(ciphertext) < ns+k.aead.Overhead() {
		return nil, fault.New(fault.KindInternal, "kms_ciphertext_invalid", "wrapped key is too short")
	}
	pt, err := k.aead.Open(nil, ciphertext[:ns], ciphertext[ns:], []byte(k.keyID))
	if err != nil {
		return nil, fault.New(fault.KindInternal, "kms_ciphertext_invalid", "wrapped key failed authentication")
	}
	return pt, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
