// Package terminal holds the rules of the browser terminal: the single-use
// 256-bit token, the grant it stands for, how it is stored (hashed) and when
// it is refused, and the control frames a browser may send.
package terminal
