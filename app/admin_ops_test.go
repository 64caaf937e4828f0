package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/storage"
)

// TestE2EAdminBackupRekeyStatus drives the operator endpoints of a running
// bot with a linked person: a streamed backup opens as a working database
// with the same key, rekey reports the link as already under the first key,
// and status says the bot is ready and the key opens everything.
func TestE2EAdminBackupRekeyStatus(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	c := adminHTTP(h.cfg.Settings.DB + ".sock") // from e2e_deploy_test.go

	// GET /backup: the body is the database, the trailer its size.
	resp, err := c.Get("http://c66bot/backup")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	var got int64
	_, err = storage.WriteBackupFile(t.Context(), out, func(w io.Writer) (int64, error) {
		n, err := io.Copy(w, resp.Body)
		got = n
		return n, err
	})
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %d, %v", resp.StatusCode, err)
	}
	if size := resp.Trailer.Get(admin.BackupSizeTrailer); size != strconv.FormatInt(got, 10) || resp.Trailer.Get(admin.BackupErrorTrailer) != "" {
		t.Errorf("trailers %v, received %d bytes", resp.Trailer, got)
	}
	cp, err := storage.Open(storage.Options{Path: out, Keys: [][]byte{h.opts.key}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := cp.Links().Count(t.Context()); err != nil || n != 1 {
		t.Errorf("links in the copy: %d, %v", n, err)
	}
	if k, err := cp.CheckKeys(t.Context()); err != nil || k.Unopenable != 0 || k.Primary == 0 {
		t.Errorf("keys against the copy: %+v, %v", k, err)
	}
	cp.Close()

	// POST /rekey: the bot's only key is already the first.
	resp, err = c.Post("http://c66bot/rekey", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rep storage.RekeyReport
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || rep.AlreadyPrimary == 0 || rep.Resealed != 0 || rep.Failed != 0 {
		t.Errorf("rekey: %d %+v %v", resp.StatusCode, rep, err)
	}

	// GET /status.
	resp, err = c.Get("http://c66bot/status")
	if err != nil {
		t.Fatal(err)
	}
	var st admin.AdminStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || !st.Ready || st.Links != 1 || st.SchemaVersion == 0 || st.Keys.Unopenable != 0 {
		t.Errorf("status: %+v, %v", st, err)
	}

	// The rekey was audited.
	resp, err = c.Get("http://c66bot/audit")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"action":"rekey"`) {
		t.Errorf("no rekey in the audit log:\n%s", body)
	}
}
