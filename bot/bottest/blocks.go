package bottest

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Block Kit limits (docs.slack.dev/reference/block-kit): checked so that a bot
// that would be refused by Slack is refused here too.
const (
	maxBlockIDLen      = 255
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxActionsElements = 25
	maxContextElements = 10
	maxButtonText      = 75
	maxActionIDLen     = 255
	maxButtonValue     = 2000
	maxURLLen          = 3000
)

func utf8Len(s string) int { return utf8.RuneCountInString(s) }

func jsonString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func jsonObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

func jsonArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil || a == nil {
		return nil, false
	}
	return a, true
}

func blockErr(format string, args ...any) string {
	return "[ERROR] " + fmt.Sprintf(format, args...)
}

// validateBlocks returns Slack-style "[ERROR] … [json-pointer:…]" messages
// for blocks that Slack would refuse with invalid_blocks.
func validateBlocks(blocks []json.RawMessage) []string {
	if len(blocks) > maxBlocks {
		return []string{blockErr("no more than %d items allowed [json-pointer:/blocks]", maxBlocks)}
	}
	var errs []string
	ids := make(map[string]bool)
	for i, raw := range blocks {
		p := fmt.Sprintf("/blocks/%d", i)
		b, ok := jsonObject(raw)
		if !ok {
			errs = append(errs, blockErr("expected an object [json-pointer:%s]", p))
			continue
		}
		if idRaw, ok := b["block_id"]; ok {
			id := jsonString(idRaw)
			switch {
			case utf8Len(id) > maxBlockIDLen:
				errs = append(errs, blockErr("must be less than %d characters [json-pointer:%s/block_id]", maxBlockIDLen+1, p))
			case ids[id]:
				errs = append(errs, blockErr("duplicate block_id [json-pointer:%s/block_id]", p))
			}
			ids[id] = true
		}
		switch typ := jsonString(b["type"]); typ {
		case "section":
			text, hasText := b["text"]
			fieldsRaw, hasFields := b["fields"]
			if !hasText && !hasFields {
				errs = append(errs, blockErr("must provide either text or fields [json-pointer:%s]", p))
			}
			if hasText {
				errs = append(errs, checkText(text, p+"/text", maxSectionText, false)...)
			}
			if hasFields {
				fields, ok := jsonArray(fieldsRaw)
				switch {
				case !ok:
					errs = append(errs, blockErr("expected an array [json-pointer:%s/fields]", p))
				case len(fields) > maxSectionFields:
					errs = append(errs, blockErr("no more than %d items allowed [json-pointer:%s/fields]", maxSectionFields, p))
				default:
					for j, f := range fields {
						errs = append(errs, checkText(f, fmt.Sprintf("%s/fields/%d", p, j), maxFieldText, false)...)
					}
				}
			}
			if acc, ok := b["accessory"]; ok {
				errs = append(errs, checkElement(acc, p+"/accessory")...)
			}
		case "header":
			errs = append(errs, checkText(b["text"], p+"/text", maxHeaderText, true)...)
		case "actions":
			errs = append(errs, checkElements(b["elements"], p+"/elements", maxActionsElements, true)...)
		case "context":
			errs = append(errs, checkElements(b["elements"], p+"/elements", maxContextElements, false)...)
		case "divider", "image", "input", "rich_text", "file", "video", "markdown", "call", "table":
		case "":
			errs = append(errs, blockErr("missing required field: type [json-pointer:%s]", p))
		default:
			errs = append(errs, blockErr("unsupported type: %s [json-pointer:%s/type]", typ, p))
		}
	}
	return errs
}

// checkText checks a text composition object.
func checkText(raw json.RawMessage, p string, maxLen int, plainOnly bool) []string {
	if raw == nil {
		return []string{blockErr("missing required field: text [json-pointer:%s]", p)}
	}
	var t struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if json.Unmarshal(raw, &t) != nil {
		return []string{blockErr("expected an object [json-pointer:%s]", p)}
	}
	if t.Type != "plain_text" && (plainOnly || t.Type != "mrkdwn") {
		return []string{blockErr("must be a valid enum value [json-pointer:%s/type]", p)}
	}
	if t.Text == nil || *t.Text == "" {
		return []string{blockErr("must be more than 0 characters [json-pointer:%s/text]", p)}
	}
	if utf8Len(*t.Text) > maxLen {
		return []string{blockErr("must be less than %d characters [json-pointer:%s/text]", maxLen+1, p)}
	}
	return nil
}

func checkElements(raw json.RawMessage, p string, maxN int, interactive bool) []string {
	els, ok := jsonArray(raw)
	switch {
	case !ok:
		return []string{blockErr("expected an array [json-pointer:%s]", p)}
	case len(els) == 0:
		return []string{blockErr("must provide at least 1 item [json-pointer:%s]", p)}
	case len(els) > maxN:
		return []string{blockErr("no more than %d items allowed [json-pointer:%s]", maxN, p)}
	}
	var errs []string
	actionIDs := make(map[string]bool)
	for i, el := range els {
		ep := fmt.Sprintf("%s/%d", p, i)
		if interactive {
			errs = append(errs, checkElement(el, ep)...)
			if obj, ok := jsonObject(el); ok {
				if id := jsonString(obj["action_id"]); id != "" {
					if actionIDs[id] {
						errs = append(errs, blockErr("duplicate action_id [json-pointer:%s/action_id]", ep))
					}
					actionIDs[id] = true
				}
			}
		} else if _, ok := jsonObject(el); !ok {
			errs = append(errs, blockErr("expected an object [json-pointer:%s]", ep))
		}
	}
	return errs
}

// checkElement checks an interactive element (buttons in detail).
func checkElement(raw json.RawMessage, p string) []string {
	el, ok := jsonObject(raw)
	if !ok {
		return []string{blockErr("expected an object [json-pointer:%s]", p)}
	}
	var errs []string
	if utf8Len(jsonString(el["action_id"])) > maxActionIDLen {
		errs = append(errs, blockErr("must be less than %d characters [json-pointer:%s/action_id]", maxActionIDLen+1, p))
	}
	if jsonString(el["type"]) == "button" {
		errs = append(errs, checkText(el["text"], p+"/text", maxButtonText, true)...)
		if utf8Len(jsonString(el["value"])) > maxButtonValue {
			errs = append(errs, blockErr("must be less than %d characters [json-pointer:%s/value]", maxButtonValue+1, p))
		}
		if utf8Len(jsonString(el["url"])) > maxURLLen {
			errs = append(errs, blockErr("must be less than %d characters [json-pointer:%s/url]", maxURLLen+1, p))
		}
	}
	return errs
}
