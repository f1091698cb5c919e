package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Version1 is the only envelope layout so far. The version byte comes first
// so a later layout (another cipher, a KMS that binds context itself) can be
// read side by side with old envelopes during a re-encryption.
const Version1 byte = 1

// Layout limits. They bound what the decoder accepts, so a corrupted length
// field cannot make it allocate or slice beyond the input.
const (
	MaxKeyIDLen      = 255     // one length byte
	MaxWrappedKeyLen = 4096    // KMS ciphertexts of a 32-byte key are far smaller
	dataKeyLen       = 32      // AES-256
	nonceLen         = 12      // GCM standard nonce
	tagLen           = 16      // GCM tag
	maxPlaintextLen  = 1 << 24 // 16 MiB: secrets are keys and small documents
)

// CodeDecryptFailed is the stable code of every refusal to open an
// envelope: malformed, tampered, bound to another context, or wrapped by a
// key the KMS does not hold. The causes are not told apart to callers (they
// are a single "this secret is unusable" to an operator), and the error
// never carries plaintext or key material.
const CodeDecryptFailed fault.Code = "secret_decrypt_failed"

// ErrDecrypt matches (errors.Is) any refusal to open an envelope.
var ErrDecrypt = fault.New(fault.KindInternal, CodeDecryptFailed, "")

func decryptFailed(msg string) error {
	return fault.New(fault.KindInternal, CodeDecryptFailed, "secret could not be decrypted: "+msg)
}

// Envelope is the parsed form of a sealed secret.
//
// Wire layout (version 1), all lengths big-endian:
//
//	version      1 byte  (= 1)
//	key id len   1 byte, key id (KMS key that wrapped the data key)
//	wrapped len  2 bytes, wrapped data key (KMS ciphertext)
//	nonce        12 bytes
//	ciphertext   the rest: AES-256-GCM(plaintext) with its 16-byte tag
//
// The GCM additional data is the whole header (version through nonce)
// followed by the caller's context string, so changing any header byte or
// opening under another context fails authentication.
type Envelope struct {
	Version    byte
	KeyID      string
	WrappedKey []byte
	Nonce      []byte
	Ciphertext []byte
}

// Parse decodes an envelope without decrypting it. It refuses anything that
// is not exactly one well-formed version-1 envelope.
func Parse(b []byte) (Envelope, error) {
	if len(b) < 1+1+2+nonceLen+tagLen {
		return Envelope{}, decryptFailed("envelope too short")
	}
	if b[0] != Version1 {
		return Envelope{}, decryptFailed("unknown envelope version")
	}
	off := 1
	kl := int(b[off])
	off++
	if kl == 0 || len(b) < off+kl+2 {
		return Envelope{}, decryptFailed("bad key id")
	}
	keyID := string(b[off : off+kl])
	off += kl
	wl := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if wl == 0 || wl > MaxWrappedKeyLen || len(b) < off+wl+nonceLen+tagLen {
		return Envelope{}, decryptFailed("bad wrapped key")
	}
	wrapped := b[off : off+wl]
	off += wl
	nonce := b[off : off+nonceLen]
	off += nonceLen
	return Envelope{
		Version:    Version1,
		KeyID:      keyID,
		WrappedKey: clone(wrapped),
		Nonce:      clone(nonce),
		Ciphertext: clone(b[off:]),
	}, nil
}

// Marshal encodes the envelope; it is the inverse of Parse.
func (e Envelope) Marshal() ([]byte, error) {
	h, err := e.header()
	if err != nil {
		return nil, err
	}
	return append(h, e.Ciphertext...), nil
}

// header is the encoded envelope up to and including the nonce.
func (e Envelope) header() ([]byte, error) {
	switch {
	case e.Version != Version1:
		return nil, errors.New("envelope: unknown version")
	case len(e.KeyID) == 0 || len(e.KeyID) > MaxKeyIDLen:
		return nil, errors.New("envelope: key id must be 1..255 bytes")
	case len(e.WrappedKey) == 0 || len(e.WrappedKey) > MaxWrappedKeyLen:
		return nil, errors.New("envelope: wrapped key must be 1..4096 bytes")
	case len(e.Nonce) != nonceLen:
		return nil, errors.New("envelope: nonce must be 12 bytes")
	}
	h := make([]byte, 0, 1+1+len(e.KeyID)+2+len(e.WrappedKey)+nonceLen+len(e.Ciphertext))
	h = append(h, e.Version, byte(len(e.KeyID)))
	h = append(h, e.KeyID...)
	h = binary.BigEndian.AppendUint16(h, uint16(len(e.WrappedKey)))
	h = append(h, e.WrappedKey...)
	h = append(h, e.Nonce...)
	return h, nil
}

// additionalData binds the ciphertext to the header and to the caller's
// context. The context is length-prefixed after a fixed-size-delimited
// header so no two (header, context) pairs share additional data.
func additionalData(header []byte, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+4+len(aad))
	ad = append(ad, header...)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(aad)))
	return append(ad, aad...)
}

// Seal encrypts plaintext under a fresh data key wrapped by kms and binds
// it to aad (the secret's name or another context string the caller will
// present again to Open). Each call uses a new data key and nonce.
func Seal(ctx context.Context, kms ports.KMS, plaintext, aad []byte) ([]byte, error) {
	if kms == nil {
		return nil, errors.New("envelope: no KMS")
	}
	if len(plaintext) > maxPlaintextLen {
		return nil, fault.New(fault.KindTooLarge, fault.CodePayloadTooLarge, "secret is too large to seal")
	}
	dk := make([]byte, dataKeyLen)
	defer wipe(dk)
	if _, err := rand.Read(dk); err != nil {
		return nil, fault.Internal(err)
	}
	wrapped, err := kms.Encrypt(ctx, dk)
	if err != nil {
		return nil, err
	}
	e := Envelope{Version: Version1, KeyID: kms.KeyID(), WrappedKey: wrapped, Nonce: make([]byte, nonceLen)}
	if _, err := rand.Read(e.Nonce); err != nil {
		return nil, fault.Internal(err)
	}
	h, err := e.header()
	if err != nil {
		return nil, fault.Internal(err)
	}
	aead, err := newGCM(dk)
	if err != nil {
		return nil, fault.Internal(err)
	}
	return aead.Seal(h, e.Nonce, plaintext, additionalData(h, aad)), nil
}

// Open decrypts an envelope made by Seal with the same aad. Every refusal
// matches ErrDecrypt, except a KMS that is unreachable, whose Unavailable
// error is returned as it is so callers can retry.
func Open(ctx context.Context, kms ports.KMS, sealed, aad []byte) ([]byte, error) {
	if kms == nil {
		return nil, errors.New("envelope: no KMS")
	}
	e, err := Parse(sealed)
	if err != nil {
		return nil, err
	}
	dk, err := kms.Decrypt(ctx, e.KeyID, e.WrappedKey)
	if err != nil {
		if fault.IsKind(err, fault.KindUnavailable) {
			return nil, err
		}
		// The KMS's own error may say why (unknown key, corrupt blob); it is
		// kept as the cause for logs. KMS errors never hold the data key.
		return nil, fault.From(decryptFailed("the data key could not be unwrapped")).Wrap(err)
	}
	defer wipe(dk)
	if len(dk) != dataKeyLen {
		return nil, decryptFailed("unwrapped data key has the wrong size")
	}
	aead, err := newGCM(dk)
	if err != nil {
		return nil, fault.Internal(err)
	}
	h, err := e.header()
	if err != nil {
		return nil, decryptFailed("bad header")
	}
	pt, err := aead.Open(nil, e.Nonce, e.Ciphertext, additionalData(h, aad))
	if err != nil {
		// GCM says only "message authentication failed": no plaintext leaks.
		return nil, decryptFailed("authentication failed (tampered, or another context)")
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// wipe zeroes key material once it is no longer needed. Best effort: Go may
// have copied it, but the long-lived copies are the ones that matter.
func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
