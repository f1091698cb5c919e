package devoidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Directory tells the dev provider which people the platform expects: an
// operator created them (POST /admin/users) or a tenant invited them. Such
// a person signs in with their email; the password they give the first
// time becomes theirs.
type Directory interface {
	// Expected reports whether someone with this (lower-case) email may
	// set a password and sign in.
	Expected(ctx context.Context, email string) (bool, error)
}

// MinPasswordLength is the shortest password a person may choose.
const MinPasswordLength = 8

// person is someone who signed in with their email (not a demo user).
type person struct {
	Email   string `json:"email"`
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Hash    []byte `json:"bcrypt"` // the password's bcrypt hash; never the password
}

// lookupLocked returns the demo user or person signing in as username.
// p.mu is held (or the provider is not shared yet).
func (p *Provider) lookupLocked(username string) (DemoUser, bool) {
	if u, ok := p.users[username]; ok {
		return u, true
	}
	if pr, ok := p.people[strings.ToLower(username)]; ok {
		return pr.demo(), true
	}
	return DemoUser{}, false
}

func (pr person) demo() DemoUser {
	return DemoUser{Username: pr.Email, Email: pr.Email, Name: pr.Name, Roles: []string{"user"}, Subject: pr.Subject}
}

// errFirstSignIn explains a refused first sign-in on the login page.
var errFirstSignIn = errors.New("devoidc: the first password must have at least 8 characters")

// checkPerson signs in a person by email: with their password, or — the
// first time, when the directory expects them — setting it.
func (p *Provider) checkPerson(ctx context.Context, username, password string) (DemoUser, bool, error) {
	email := strings.ToLower(strings.TrimSpace(username))
	if !strings.Contains(email, "@") {
		return DemoUser{}, false, nil
	}
	p.mu.Lock()
	pr, known := p.people[email]
	p.mu.Unlock()
	if known {
		return pr.demo(), bcrypt.CompareHashAndPassword(pr.Hash, []byte(password)) == nil, nil
	}
	if p.cfg.Directory == nil {
		return DemoUser{}, false, nil
	}
	expected, err := p.cfg.Directory.Expected(ctx, email)
	if err != nil || !expected {
		return DemoUser{}, false, err
	}
	if len(password) < MinPasswordLength {
		return DemoUser{}, false, errFirstSignIn
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return DemoUser{}, false, err
	}
	name, _, _ := strings.Cut(email, "@")
	pr = person{Email: email, Name: name, Subject: SubjectFor("person:" + email), Hash: hash}
	p.mu.Lock()
	if existing, raced := p.people[email]; raced {
		p.mu.Unlock()
		return existing.demo(), bcrypt.CompareHashAndPassword(existing.Hash, []byte(password)) == nil, nil
	}
	p.people[email] = pr
	err = p.savePeopleLocked()
	p.mu.Unlock()
	return pr.demo(), err == nil, err
}

// loadPeople reads Config.PeopleFile (absent: nobody yet).
func (p *Provider) loadPeople() error {
	if p.cfg.PeopleFile == "" {
		return nil
	}
	b, err := os.ReadFile(p.cfg.PeopleFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list []person
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("devoidc: %s: %w (delete it to forget the people's passwords)", p.cfg.PeopleFile, err)
	}
	for _, pr := range list {
		p.people[pr.Email] = pr
	}
	return nil
}

// savePeopleLocked writes the people (mode 0600, atomically). p.mu is held.
func (p *Provider) savePeopleLocked() error {
	if p.cfg.PeopleFile == "" {
		return nil
	}
	list := make([]person, 0, len(p.people))
	for _, pr := range p.people {
		list = append(list, pr)
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.cfg.PeopleFile), ".people-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p.cfg.PeopleFile)
}
