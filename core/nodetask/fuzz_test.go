package nodetask

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValidateParams: any bytes under any catalogue type either validate
// into that type's parameter struct — which then re-validates after a
// round trip through JSON — or are refused with an error; never a panic.
func FuzzValidateParams(f *testing.F) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0+TxYiD1CkL3V7SpiGe2LeP8J0m6ZTxhrNdLk2F3p"
	for _, s := range []string{
		`{"allocation_id":"a1","username":"ga_abcdefgh","authorized_keys":["` + key + `"]}`,
		`{"allocation_id":"a1","username":"ga_abcdefgh"}`,
		`{}`, `null`, `[]`, `{"allocation_id":"a1","username":"root","authorized_keys":["x"]}`,
		`{"allocation_id":"a1","username":"ga_abcdefgh","authorized_keys":["` + key + `"],"gpu_indices":[0,1,1]}`,
		`{} {}`,
		`{"allocation_id":"a1","username":"ga_abcdefgh","direction":"pull","dir":"project","files":[{"path":"a/b.txt","size":3,"url":"http://127.0.0.1:9000/b/k?X-Amz-Signature=x"}]}`,
		`{"allocation_id":"a1","username":"ga_abcdefgh","direction":"scan","dir":"project","max_files":10}`,
		`{"allocation_id":"a1","username":"ga_abcdefgh","direction":"push","dir":".ssh","files":[]}`,
		`{"allocation_id":"a1","username":"ga_abcdefgh","direction":"pull","dir":"p","files":[{"path":"../x","size":1,"url":"http://h/x"}]}`,
	} {
		for _, t := range Catalogue {
			f.Add(string(t), []byte(s))
		}
	}
	f.Add("node.reboot", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		p, err := ValidateParams(Type(typ), raw)
		if err != nil {
			return
		}
		if !Known(Type(typ)) {
			t.Fatalf("unknown type %q validated", typ)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ValidateParams(Type(typ), again); err != nil {
			t.Fatalf("validated params do not re-validate: %s: %v", again, err)
		}
		switch v := p.(type) {
		case ProvisionUserParams:
			if !usernameRE.MatchString(v.Username) || len(v.AuthorizedKeys) == 0 {
				t.Fatalf("invalid provision params accepted: %+v", v)
			}
		case RevokeUserParams:
			if !usernameRE.MatchString(v.Username) || v.GraceSeconds < 0 || v.GraceSeconds > MaxGraceSeconds {
				t.Fatalf("invalid revoke params accepted: %+v", v)
			}
		case StopUserParams:
			if !usernameRE.MatchString(v.Username) || v.GraceSeconds < 0 || v.GraceSeconds > MaxGraceSeconds {
				t.Fatalf("invalid stop params accepted: %+v", v)
			}
		case StorageSyncParams:
			if !usernameRE.MatchString(v.Username) || ValidSyncDir(v.Dir) != nil || len(v.Files) > MaxSyncFiles {
				t.Fatalf("invalid storage sync params accepted: %+v", v)
			}
			for _, f := range v.Files {
				if strings.HasPrefix(f.Path, "/") || strings.Contains("/"+f.Path+"/", "/../") {
					t.Fatalf("a sync path outside its folder was accepted: %q", f.Path)
				}
			}
		}
	})
}
