// Package notification is what the platform tells people about their nodes
// and money: the kinds of notification, how a domain event becomes one
// (title, body, audience), per-user channel preferences, outbound webhook
// endpoints with their Standard Webhooks signatures, and the retry
// schedules of email and webhook deliveries. It has no I/O; its use cases
// live in notificationsvc.
package notification
