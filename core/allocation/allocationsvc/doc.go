// Package allocationsvc holds the allocation use cases: create (balance,
// caps, SSH key and placement in one transaction), read, release, the
// operator's views, the provisioning worker's state transitions, and the
// user's SSH keys that allocations install.
package allocationsvc
