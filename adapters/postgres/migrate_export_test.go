package postgres

import (
	"context"
	"io/fs"
)

// ParseMigrations reads migrations from another file system (tests that
// apply their own).
func ParseMigrations(fsys fs.FS, dir string) ([]Migration, error) { return parseMigrations(fsys, dir) }

// MigrateUpWith applies ms instead of the embedded migrations.
func (db *DB) MigrateUpWith(ctx context.Context, ms []Migration) ([]int, error) {
	return db.migrateUp(ctx, ms)
}

// MigrateDownWith reverts steps of ms.
func (db *DB) MigrateDownWith(ctx context.Context, ms []Migration, steps int) ([]int, error) {
	return db.migrateDown(ctx, ms, steps)
}
