// Package postgres implements the platform's stores, transaction runner,
// outbox and migrations on PostgreSQL through pgx/v5.
package postgres
