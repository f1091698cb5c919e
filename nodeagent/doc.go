// Package nodeagent is the agent that runs on GPU hosts: it enrols with a
// one-time token, talks to the agent gateway over mTLS, renews its
// certificate at two thirds of its lifetime, heartbeats its GPU inventory,
// long-polls for signed tasks, verifies every one of them and runs only the
// compiled handlers of the task catalogue through an Executor.
package nodeagent
