package sandbox

import (
	"strings"
)

// cleanLine is a typed line as the person meant it. A terminal without
// line editing (the console reads plain lines) passes arrow and function
// keys on as escape sequences ("\x1b[A" for ↑) and Backspace as a control
// character; sent on, they would end up in the command the bot sees, and
// printed back they would move the cursor. So escape sequences (CSI, SS3,
// OSC and two-byte ones) and control characters are dropped, Backspace and
// DEL erase the character before them, and a tab is a space.
func cleanLine(line string) string {
	line = strings.ToValidUTF8(line, "")
	out := make([]rune, 0, len(line))
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\b' || r == 0x7f:
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case r == '\t':
			out = append(out, ' ')
		case r == 0x1b:
			i = skipEscape(rs, i)
		case r == 0x9b: // the one-character CSI
			i = skipCSI(rs, i+1)
		case r < 0x20 || (r >= 0x80 && r < 0xa0):
			// other C0 and C1 controls: nothing a command contains
		default:
			out = append(out, r)
		}
	}
	return string(out)
}

// skipEscape returns the index of the last rune of the escape sequence
// that starts with ESC at rs[i].
func skipEscape(rs []rune, i int) int {
	if i+1 >= len(rs) {
		return i
	}
	switch rs[i+1] {
	case '[':
		return skipCSI(rs, i+2)
	case ']', 'P', '_', '^': // OSC, DCS, APC, PM: up to BEL or ESC \
		for j := i + 2; j < len(rs); j++ {
			if rs[j] == 0x07 {
				return j
			}
			if rs[j] == 0x1b && j+1 < len(rs) && rs[j+1] == '\\' {
				return j + 1
			}
		}
		return len(rs) - 1
	case 'O': // SS3: one more character (F1–F4, keypad arrows)
		return min(i+2, len(rs)-1)
	}
	return i + 1 // ESC and one character (Alt+key)
}

// skipCSI returns the index of the final byte of a control sequence whose
// parameters start at rs[j]: parameter and intermediate bytes (0x20–0x3f)
// up to a final byte (0x40–0x7e).
func skipCSI(rs []rune, j int) int {
	for ; j < len(rs); j++ {
		if rs[j] >= 0x40 && rs[j] <= 0x7e {
			return j
		}
		if rs[j] < 0x20 || rs[j] > 0x3f {
			return j - 1 // malformed: keep what follows
		}
	}
	return len(rs) - 1
}
