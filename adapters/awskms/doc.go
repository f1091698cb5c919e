// Package awskms implements ports.KMS over AWS KMS: the encryption
// envelope's data keys are wrapped and unwrapped by a KMS key that never
// leaves AWS.
package awskms
