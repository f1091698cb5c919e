package allocationsvc

import (
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/text"
)

// Lengths of the allocation and SSH key inputs, in characters (code points).
// The API contract's maxLength values equal them (hosts/http checks).
const (
	SSHKeyNameMaxLength = 100
	PublicKeyMaxLength  = 16 << 10
)

// checkCreateText holds a create request's text to core/text.
func checkCreateText(req CreateRequest) error {
	if err := text.Line("sku_id", req.SKUID, 1, inventory.SKUIDMaxLength); err != nil {
		return err
	}
	for _, id := range req.SSHKeyIDs {
		if err := identity.ValidateID("ssh_key_ids", id); err != nil {
			return err
		}
	}
	return nil
}

// checkSSHKeyText holds a new key's name and text to core/text: the name
// is single-line text; the key is opaque (the SSH parser judges it; it is
// stored re-encoded) but never NUL or invalid UTF-8.
func checkSSHKeyText(name, publicKey string) error {
	if err := text.Line("name", name, 1, SSHKeyNameMaxLength); err != nil {
		return err
	}
	return text.Opaque("public_key", publicKey, PublicKeyMaxLength)
}
