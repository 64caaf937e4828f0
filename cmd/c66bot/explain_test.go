package main

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestCleanError(t *testing.T) {
	t.Parallel()
	path := "/var/lib/c66bot/c66bot.db"
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("open database %s: storage: open %s: %w", path, path, &fs.PathError{Op: "open", Path: path, Err: syscall.EIO}),
			"open database " + path + ": input/output error"},
		{fmt.Errorf("storage: open %s: storage: database schema v9 is newer than this c66bot (v4); upgrade c66bot", path),
			"open " + path + ": database schema v9 is newer than this c66bot (v4); upgrade c66bot"},
		{errors.New("notify: deliver: slack: not_in_channel"), "deliver: slack: not_in_channel"},
		{errors.New("two\nlines"), "two lines"},
		{errors.New("c66bot: is not a prefix"), "c66bot: is not a prefix"},
	}
	for _, tc := range tests {
		if got := cleanError(tc.err); got != tc.want {
			t.Errorf("cleanError(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
