package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// osAccounts creates and removes the OS users of a sandbox running as
// root, so a shell's identity (whoami, id, file ownership) matches its USER
// and accounts cannot touch each other's files. Every user it creates
// carries comment in its GECOS field: that is how a restarted sandbox tells
// its own users from anyone else's, and it never touches another.
type osAccounts struct {
	enabled bool
	comment string
	passwd  string // /etc/passwd; tests may point elsewhere
}

func (o osAccounts) passwdFile() string {
	if o.passwd != "" {
		return o.passwd
	}
	return "/etc/passwd"
}

type passwdEntry struct {
	name     string
	uid, gid int
	gecos    string
}

// lookup finds name in the passwd file.
func (o osAccounts) lookup(name string) (passwdEntry, bool) {
	for _, e := range o.entries() {
		if e.name == name {
			return e, true
		}
	}
	return passwdEntry{}, false
}

func (o osAccounts) entries() []passwdEntry {
	f, err := os.Open(o.passwdFile())
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []passwdEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) < 7 {
			continue
		}
		uid, err1 := strconv.Atoi(p[2])
		gid, err2 := strconv.Atoi(p[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: p[0], uid: uid, gid: gid, gecos: p[4]})
	}
	return out
}

// ensure creates the user (home not created: the sandbox made it) or
// returns the existing one of this sandbox.
func (o osAccounts) ensure(name, home, shell string) (uid, gid int, err error) {
	if e, ok := o.lookup(name); ok {
		if e.gecos != o.comment {
			return 0, 0, fmt.Errorf("an OS user %q exists that this sandbox did not create", name)
		}
		return e.uid, e.gid, nil
	}
	out, err := exec.Command("useradd", "--no-create-home", "--home-dir", home, "--shell", shell,
		"--user-group", "--comment", o.comment, name).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("useradd %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	e, ok := o.lookup(name)
	if !ok {
		return 0, 0, fmt.Errorf("useradd %s: the user is not in %s", name, o.passwdFile())
	}
	return e.uid, e.gid, nil
}

// uidOf is the uid of this sandbox's user name, or -1.
func (o osAccounts) uidOf(name string) int {
	if e, ok := o.lookup(name); ok && e.gecos == o.comment {
		return e.uid
	}
	return -1
}

// remove deletes this sandbox's user name (and its group); an absent user
// is fine.
func (o osAccounts) remove(name string) error {
	e, ok := o.lookup(name)
	if !ok {
		return nil
	}
	if e.gecos != o.comment {
		return fmt.Errorf("the OS user %q was not created by this sandbox; not removing it", name)
	}
	out, err := exec.Command("userdel", name).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 6 { // no such user: removed meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("userdel %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// list names this sandbox's users.
func (o osAccounts) list() []string {
	if !o.enabled {
		return nil
	}
	var out []string
	for _, e := range o.entries() {
		if e.gecos == o.comment {
			out = append(out, e.name)
		}
	}
	return out
}
