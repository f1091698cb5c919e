// Package fault defines error kinds and stable machine codes shared by every
// context and host. See doc/architecture.md "Errors".
package fault
