// Package agentsvc holds the node agent's use cases on the control plane:
// enrolment with a one-time bootstrap token, certificate renewal, caller
// authentication from a client certificate, heartbeats, task polling and
// result reports.
package agentsvc
