// Package stepca implements ports.CertificateAuthority over a step-ca
// server: node CSRs are signed through its /1.0/sign endpoint with one-time
// tokens from a JWK provisioner, for operators who run their PKI on
// step-ca instead of the built-in CA.
package stepca
