package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/storage"
)

// backup writes a consistent copy of the database to FILE:
//
//	c66bot backup [--db DB] FILE
//
// PostgreSQL (C66BOT_DATABASE_URL) is refused: pg_dump backs it up.
// When the bot is stopped the file is copied directly (a shared lock, no
// keys needed, any schema version, so it also works before an upgrade);
// while it runs, bbolt lets only the bot open the file, so the bot streams
// the copy over its admin socket. Either way the copy is written to
// FILE.tmp, synced, checked and renamed, so FILE is never a partial copy.
// A FILE that is a directory gets a time-stamped name inside it.
func backup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: c66bot backup [--db DB] FILE\n\nwrites a consistent copy of the database to FILE (or into FILE when it is a directory)")
	}
	v, files, err := parseSettingsArgs("backup", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.Usage = func() { usage(); fs.PrintDefaults() }
	})
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot backup: %v\n", err)
		return 2
	}
	if databaseOf(v).postgres() {
		fmt.Fprintf(stderr, "c66bot backup: %v\n", errPostgresBackup)
		return 1
	}
	if len(files) != 1 {
		usage()
		return 2
	}
	path := v.Get("C66BOT_DB")
	out := files[0]
	if info, err := os.Stat(out); err == nil && info.IsDir() {
		out = filepath.Join(out, "c66bot-"+time.Now().UTC().Format("20060102-150405")+".db")
	}

	via := "from the database file"
	n, err := storage.BackupPath(ctx, path, out, 300*time.Millisecond)
	if errors.Is(err, storage.ErrLocked) {
		via = "through the running bot"
		n, err = remoteBackup(ctx, path, out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot backup: %s\n", explainOperatorError(err, path))
		return 1
	}
	fmt.Fprintf(stderr, "c66bot: backed up %s (%s, %s) to %s\n", path, humanBytes(n), via, out)
	key := "the key file " + storage.KeyFilePath(path)
	if getenv("C66BOT_SECRET_KEY") != "" {
		key = "C66BOT_SECRET_KEY (every key in it)"
	}
	fmt.Fprintf(stderr, "c66bot: the sealing key is not in the copy: back up %s separately; without it the tokens in the copy cannot be opened and every person must log in again.\n", key)
	return 0
}

// remoteBackup asks the running bot that holds dbPath for a copy and writes
// it to out the same safe way as a local copy.
func remoteBackup(ctx context.Context, dbPath, out string) (int64, error) {
	// The bot cannot check the target itself, and renaming its copy over
	// its own live file would lose every write after the copy.
	if same, err := storage.SameFile(dbPath, out); err != nil {
		return 0, err
	} else if same {
		return 0, fmt.Errorf("%s is the database file itself; choose another file", out)
	}
	sock := dbPath + ".sock"
	c := newAdminClient(sock)
	// A large database can take longer than the minute other admin calls
	// get; the operator's Ctrl-C (ctx) bounds the copy instead, and a bot
	// that never starts answering is still caught.
	c.http.Timeout = 0
	if tr, ok := c.http.Transport.(*http.Transport); ok {
		tr.ResponseHeaderTimeout = 30 * time.Second
	}
	return storage.WriteBackupFile(ctx, out, func(w io.Writer) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://c66bot/backup", nil)
		if err != nil {
			return 0, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return 0, fmt.Errorf("the database is in use and the running bot's admin socket %s did not answer: %w", sock, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var e struct{ Error string }
			_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
			return 0, fmt.Errorf("the running bot answered %d: %s", resp.StatusCode, e.Error)
		}
		n, err := io.Copy(w, resp.Body)
		if err != nil {
			return n, fmt.Errorf("copy from the running bot: %w", err)
		}
		// Trailers are there only once the body has been read to the end.
		if msg := resp.Trailer.Get(admin.BackupErrorTrailer); msg != "" {
			return n, fmt.Errorf("the running bot failed midway: %s", msg)
		}
		sent, err := strconv.ParseInt(resp.Trailer.Get(admin.BackupSizeTrailer), 10, 64)
		if err != nil || sent != n {
			return n, fmt.Errorf("the copy from the running bot is incomplete: received %d bytes, the bot reported %q", n, resp.Trailer.Get(admin.BackupSizeTrailer))
		}
		return n, nil
	})
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// humanBytes formats a size for people: 1536 → "1.5 KiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
