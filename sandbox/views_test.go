package sandbox

import (
	"testing"
	"time"
)

// :home prints the App Home the bot publishes: a Log in button with its
// URL before the person links Cloud 66, their account after, and the Home
// again, marked updated, when the bot republishes it.
func TestConsoleHome(t *testing.T) {
	t.Parallel()
	// The deploy outlasts the test: the republished Home shows it running.
	tm, sb := startConsoleWith(t, func(o *Options) { o.DeployDuration = time.Hour })
	tm.expect("ana in #general> ")

	tm.typeLine(":home")
	tm.expect("[home of @ana]\n", "c66bot\n", "You haven't linked your Cloud 66 account yet.",
		"[Log in ↗ "+sb.URL+"/", "ana in #general> ")

	tm.typeLine("/c66 login")
	tm.expect("(browser) signed in to Cloud 66 as ana@example.com", "✅ Linked to Cloud 66 account Acme")
	tm.typeLine(":home")
	tm.expect("[home of @ana]\n", "Acme", "Your running actions", "Nothing running.")

	// A deploy changes what the Home shows: the bot republishes it.
	tm.typeLine("/c66 deploy shop:staging")
	tm.expect("[home of @ana] (updated)\n", "Your running actions", "🚀 deployment of shop · staging, deploying")
}

// The deploy form, driven from the console: it opens on `deploy` with no
// stack, :pick searches and chooses the stack (the bot redraws the form
// with that stack's fields), :set fills them in, :submit shows the fields'
// errors and then, once valid, closes the form and the deploy runs.
func TestConsoleDeployForm(t *testing.T) {
	t.Parallel()
	tm, _ := startConsole(t)
	tm.typeLine("/c66 login")
	tm.expect("✅ Linked to Cloud 66 account Acme", "ana in #general> ")

	tm.typeLine(":submit")
	tm.expect("No form is open for @ana")

	tm.typeLine("/c66 deploy")
	tm.expect("[form] Deploy — :pick, :set, :submit or :close\n", "1. Stack: — (:pick <text>)", "(Pick a stack to see the options its type takes.)", "ana in #general> ")

	tm.typeLine(":submit")
	tm.expect("Fill in the required fields first (stack).")
	tm.typeLine(":pick 1")
	tm.expect("Pick one of the 0 stacks the last :pick offered")
	tm.typeLine(":pick zzz")
	tm.expect(`No stack of yours matches "zzz".`)

	// The form is ana's: ben, at the same console, has none.
	tm.typeLine(":user ben")
	tm.expect("Now typing as @ben")
	tm.typeLine(":pick shop")
	tm.expect("No form is open for @ben")
	tm.typeLine(":user ana")
	tm.expect("Now typing as @ana")

	tm.typeLine(":pick shop")
	tm.expect(`[form] stacks matching "shop":`, "[1] shop:production", "[2] shop:staging")
	tm.typeLine(":pick 1")
	tm.expect("(@ana picked shop:production)", "[form] Deploy (updated) — :pick, :set, :submit or :close\n", "1. Stack: shop:production", "2. Ref (optional): — (:set ref=‹main, v2.1 or a commit›)")

	tm.typeLine(":set ref=v2.1")
	tm.expect("(Ref: v2.1)")
	tm.typeLine(":set nope=1")
	tm.expect(`The form has no field "nope"`)
	// shop is not a Docker stack: the form has no services to set.
	tm.typeLine(":set services=web")
	tm.expect(`The form has no field "services"; it has stack, ref, profile, strategy.`)
	tm.typeLine(":set strategy=fastest")
	tm.expect("Strategy is one of serial, parallel, rolling.")
	tm.typeLine(":set strategy=rolling")
	tm.expect("(Strategy: rolling)")
	tm.typeLine(":set 4=")
	tm.expect("(Strategy cleared)")
	tm.typeLine(":pick shop:staging")
	tm.expect("(@ana picked shop:staging)", "[form] Deploy (updated)", "1. Stack: shop:staging", "2. Ref (optional): v2.1")
	tm.typeLine(":pick shop:production")
	tm.expect("(@ana picked shop:production)", "1. Stack: shop:production")
	tm.typeLine(":set ref=a b")
	tm.expect("(Ref: a b)")
	tm.typeLine(":submit")
	tm.expect("[form] not sent; fix these and :submit again:\n", "  Ref: ")
	tm.typeLine(":set ref=v2.1")
	tm.expect("(Ref: v2.1)")
	tm.typeLine(":submit")
	// The form closes before the deploy answers, but the two print
	// from different goroutines: each is looked for on its own.
	tm.expect("(form closed)")
	tm.expect("Deploy shop · production?", "[1] Deploy production")
	tm.typeLine("1")
	tm.expect("[#general] msg 1\n  ⏳ Starting — shop · production", "Ref: `v2.1`")

	// A form closed from the console is gone; the next one is new.
	tm.typeLine("deploy")
	tm.expect("[form] Deploy — ", "1. Stack: — (:pick <text>)")
	tm.typeLine(":close")
	tm.expect("(form closed)")
	tm.typeLine(":set ref=v1")
	tm.expect("No form is open for @ana")
}
