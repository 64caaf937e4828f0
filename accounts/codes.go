package accounts

import "errors"

// MaxCodeLength bounds a pasted Cloud 66 authorization code. Cloud 66's are
// tens of characters; anything far longer is a paste gone wrong (or an
// attempt to make the bot send Cloud 66 a megabyte), refused before the
// pending login is touched.
const MaxCodeLength = 256

// ErrCodeTooLong: the pasted code is longer than MaxCodeLength. Nothing was
// sent to Cloud 66 and the pending login is kept.
var ErrCodeTooLong = errors.New("accounts: the pasted code is too long to be a Cloud 66 code")
