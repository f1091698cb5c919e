package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// files works on the active project's storage. Remote paths start with
// ":" (`:data/train.csv`), so `cp` knows which way it copies.
func (r *runner) files(args []string) error {
	if len(args) == 0 {
		return usagef("files needs ls, cp or rm")
	}
	switch args[0] {
	case "ls":
		return r.filesList(args[1:])
	case "cp":
		return r.filesCopy(args[1:])
	case "rm":
		return r.filesRemove(args[1:])
	}
	return usagef("files %s: unknown subcommand (ls, cp, rm)", args[0])
}

// remote returns the storage path of a ":"-prefixed argument.
func remote(arg string) (string, bool) {
	if !strings.HasPrefix(arg, ":") {
		return "", false
	}
	return strings.TrimPrefix(arg[1:], "/"), true
}

// remoteName is how a path of the project's storage is written on the
// command line: ":data/x.csv" for the store's "/data/x.csv".
func remoteName(path string) string { return ":" + strings.TrimPrefix(path, "/") }

func (r *runner) filesList(args []string) error {
	f := r.flags("files ls")
	c, ctx, cancel, err := r.session(f, args, 0, 1, "at most one folder", 5*time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	folder := ""
	if len(f.args) == 1 {
		folder = strings.TrimPrefix(strings.TrimPrefix(f.args[0], ":"), "/")
	}
	var list []client.StorageEntry
	for e, err := range c.Files(ctx, folder) {
		if err != nil {
			return err
		}
		list = append(list, e)
	}
	return r.out(map[string]any{"path": "/" + folder, "entries": list}, func(w io.Writer) {
		rows := make([][]string, 0, len(list))
		for _, e := range list {
			size := itoa(e.SizeBytes)
			name := e.Name
			if e.Kind == client.StorageDir {
				size, name = "-", name+"/"
			}
			rows = append(rows, []string{name, size, e.UpdatedAt.Format(time.RFC3339)})
		}
		table(w, "NAME\tBYTES\tUPDATED", rows)
	})
}

func (r *runner) filesCopy(args []string) error {
	f := r.flags("files cp")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.want(2, 2, "a source and a destination, one of them remote (:path)"); err != nil {
		return err
	}
	src, dst := f.args[0], f.args[1]
	rs, srcRemote := remote(src)
	rd, dstRemote := remote(dst)
	if srcRemote == dstRemote {
		return usagef("files cp copies between this machine and storage: prefix exactly one path with ':'")
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := r.withTimeout(24 * time.Hour)
	defer cancel()
	if dstRemote {
		file, err := os.Open(src)
		if err != nil {
			return err
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			return err
		}
		if st.IsDir() {
			return usagef("files cp copies files; %s is a folder", src)
		}
		if rd == "" || strings.HasSuffix(rd, "/") {
			rd = path.Join(rd, filepath.Base(src))
		}
		e, err := c.Upload(ctx, rd, file, st.Size())
		if err != nil {
			return err
		}
		return r.out(e, func(w io.Writer) {
			fmt.Fprintf(w, "Uploaded %s → %s (%d bytes)\n", src, remoteName(e.Path), e.SizeBytes)
		})
	}
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		dst = filepath.Join(dst, path.Base(rs))
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := c.Download(ctx, rs, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return r.out(map[string]any{"path": rs, "local": dst, "bytes": n}, func(w io.Writer) {
		fmt.Fprintf(w, "Downloaded :%s → %s (%d bytes)\n", rs, dst, n)
	})
}

func (r *runner) filesRemove(args []string) error {
	f := r.flags("files rm")
	recursive := f.Bool("r", false, "remove a folder and everything in it")
	c, ctx, cancel, err := r.session(f, args, 1, 1, "a remote path (:path)", 5*time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	p, ok := remote(f.args[0])
	if !ok || p == "" {
		return usagef("files rm needs a remote path such as :data/old.csv")
	}
	d, err := c.Delete(ctx, p, *recursive)
	var ce *client.Error
	if !*recursive && errors.As(err, &ce) && ce.Code == "storage_conflict" {
		// The API's message names its own parameter (recursive=true).
		return exitErr{ExitConflict, fmt.Sprintf("%s is a folder with files in it: gpuaas files rm -r %s removes it all (%d storage_conflict)",
			remoteName(p), remoteName(p), ce.StatusCode)}
	}
	if err != nil {
		return err
	}
	return r.out(d, func(w io.Writer) {
		fmt.Fprintf(w, "Removed %s (%s, %d bytes)\n", remoteName(d.Path), plural(d.Files, "file", "files"), d.Bytes)
	})
}
