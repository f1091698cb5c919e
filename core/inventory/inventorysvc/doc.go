// Package inventorysvc holds the inventory use cases: the SKU catalogue with
// live capacity, node listings for users and operators, and the operator's
// node lifecycle (register with a one-time bootstrap token, probe, retire,
// maintenance, the offline sweep).
package inventorysvc
