package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Status of a figure.
const (
	statusPass = "pass"
	statusFail = "FAIL"
	statusInfo = "info" // reported, no target
)

// figure is one measured number beside its target.
type figure struct {
	ID     string  `json:"id"`     // stable key, e.g. "ack.bot.p99"
	Name   string  `json:"name"`   // what a person reads
	Target string  `json:"target"` // e.g. "≤ 5 ms"; "" when only reported
	Result string  `json:"result"` // formatted value
	Value  float64 `json:"value"`  // in Unit
	Unit   string  `json:"unit"`
	Status string  `json:"status"`
	Note   string  `json:"note,omitempty"`
}

// scenarioResult is what one scenario produced.
type scenarioResult struct {
	Scenario string        `json:"scenario"`
	Figures  []figure      `json:"figures"`
	Notes    []string      `json:"notes,omitempty"`
	Error    string        `json:"error,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

func (r *scenarioResult) add(f figure) { r.Figures = append(r.Figures, f) }

func (r *scenarioResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// atMost is a figure with an upper-bound target.
func atMost(id, name string, value, limit float64, unit string, format func(float64) string) figure {
	st := statusPass
	if !(value <= limit) { // NaN fails too
		st = statusFail
	}
	return figure{ID: id, Name: name, Target: "≤ " + format(limit), Result: format(value), Value: value, Unit: unit, Status: st}
}

// info is a figure without a target.
func info(id, name string, value float64, unit string, format func(float64) string) figure {
	return figure{ID: id, Name: name, Result: format(value), Value: value, Unit: unit, Status: statusInfo}
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func fmtUs(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f µs", v)
	}
	return fmt.Sprintf("%.1f µs", v)
}

func fmtMB(v float64) string { return fmt.Sprintf("%.1f MB", v) }

func fmtRatio(v float64) string { return fmt.Sprintf("%.2f×", v) }

func fmtCount(v float64) string { return fmt.Sprintf("%.0f", v) }

func fmtSec(v float64) string { return fmt.Sprintf("%.2f s", v) }

func fmtBytes(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// machine describes where the figures were taken.
type machine struct {
	CPUs       int       `json:"cpus"`
	CPUModel   string    `json:"cpu_model"`
	Kernel     string    `json:"kernel"`
	GoVersion  string    `json:"go_version"`
	GOARCH     string    `json:"goarch"`
	LoadBefore string    `json:"load_before"`
	LoadAfter  string    `json:"load_after,omitempty"`
	Started    time.Time `json:"started"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), GOARCH: runtime.GOARCH, Started: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.LoadBefore = loadAvg()
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages, to show how busy the
// machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func (m machine) String() string {
	s := fmt.Sprintf("%d × %s, %s, %s %s", m.CPUs, orUnknown(m.CPUModel), orUnknown(m.Kernel), m.GoVersion, m.GOARCH)
	if m.LoadBefore != "" {
		s += ", load average " + m.LoadBefore + " at start"
		if m.LoadAfter != "" {
			s += ", " + m.LoadAfter + " at end"
		}
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// report is the whole run, as written with -json.
type report struct {
	Command string           `json:"command"`
	Machine machine          `json:"machine"`
	Results []scenarioResult `json:"results"`
}

func (r *report) failed() bool {
	for _, s := range r.Results {
		if s.Error != "" {
			return true
		}
		for _, f := range s.Figures {
			if f.Status == statusFail {
				return true
			}
		}
	}
	return false
}

// writeTable prints the plain-text table.
func (r *report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "command: %s\nmachine: %s\n\n", r.Command, r.Machine)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tTARGET\tRESULT\t")
	for _, s := range r.Results {
		for _, f := range s.Figures {
			target := f.Target
			if target == "" {
				target = "—"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Scenario, f.Name, target, f.Result, f.Status)
		}
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\t(scenario failed)\t\t%s\t%s\n", s.Scenario, oneLine(s.Error), "ERROR")
		}
	}
	tw.Flush()
	for _, s := range r.Results {
		if len(s.Notes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", s.Scenario)
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}

// writeMarkdown prints a table ready to paste into docs/benchmarks.md.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Run %s with `%s`  \n", r.Machine.Started.Format("2006-01-02 15:04 MST"), r.Command)
	fmt.Fprintf(w, "Machine: %s\n\n", r.Machine)
	fmt.Fprintln(w, "| Scenario | Figure | Target | Result | |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, s := range r.Results {
		for _, f := range s.Figures {
			target := f.Target
			if target == "" {
				target = "(reported)"
			}
			st := f.Status
			switch st {
			case statusPass:
				st = "✅ pass"
			case statusFail:
				st = "❌ **fail**"
			case statusInfo:
				st = ""
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", s.Scenario, mdEsc(f.Name), mdEsc(target), mdEsc(f.Result), st)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "| %s | scenario failed | | %s | ❌ **error** |\n", s.Scenario, mdEsc(oneLine(s.Error)))
		}
	}
	var notes []string
	for _, s := range r.Results {
		for _, n := range s.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", s.Scenario, n))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, mdEsc(n))
		}
	}
}

func mdEsc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
