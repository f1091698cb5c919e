package inventory

// Lengths of the inventory inputs, in characters. The API contract's
// maxLength values equal them (hosts/http checks).
const (
	SKUIDMaxLength    = 64
	NodeNameMaxLength = 63
	SSHHostMaxLength  = 253 // a DNS name
)
