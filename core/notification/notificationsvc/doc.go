// Package notificationsvc holds the notification use cases: an event
// becomes, once per recipient, an inbox row (read live through the stream),
// a queued email, and signed deliveries to the project's webhook endpoints;
// the dispatchers send the queued emails and deliveries with retries; users
// read and mark their inbox, choose channels and manage endpoints.
package notificationsvc
