package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/app"
)

// Every setting serve reads has its row in the README's settings table,
// with its flag: a setting added without one fails here.
func TestREADMEListsEverySetting(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, s := range app.Table() {
		row := "| `" + s.Env + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no settings row for %s", s.Env)
			continue
		}
		if s.Flag != "" && !strings.Contains(readme, row+" `--"+s.Flag+"` |") {
			t.Errorf("README.md's row for %s does not name its flag --%s", s.Env, s.Flag)
		}
	}
}
