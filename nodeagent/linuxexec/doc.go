// Package linuxexec is the node agent's executor for real Linux hosts: it
// manages per-allocation accounts with useradd/userdel, installs their
// authorized keys, trusts the platform SSH user CA for each account's
// principal through an sshd drop-in, grants the GPU device group and kills
// everything the account runs on revoke.
package linuxexec
