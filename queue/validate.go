package queue

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// These patterns are the name rules of pgq.enqueue() (migration 0001; the
// table's domains check only lengths, migration 0013), here so that bad
// input is reported before a statement is sent; a test holds the two in
// step.
var (
	taskPattern  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}$`)
	queuePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$`)
)

// validNames remembers names that passed, because a program uses few names
// many times and the regex is a third of the cost of preparing a bulk job.
// It stops growing at maxCachedNames so hostile input cannot inflate it.
var (
	validTasks, validQueues sync.Map // name -> struct{}
	validNamesCount         atomic.Int64
	maxCachedNames          = int64(10_000)
)

func knownValid(m *sync.Map, name string) bool {
	_, ok := m.Load(name)
	return ok
}

func rememberValid(m *sync.Map, name string) {
	if validNamesCount.Load() < maxCachedNames {
		if _, loaded := m.LoadOrStore(name, struct{}{}); !loaded {
			validNamesCount.Add(1)
		}
	}
}

// ValidateTaskName reports whether name can name a task.
func ValidateTaskName(name string) error {
	if knownValid(&validTasks, name) {
		return nil
	}
	if err := validateTaskName(name); err != nil {
		return err
	}
	rememberValid(&validTasks, name)
	return nil
}

func validateTaskName(name string) error {
	if name == "" {
		return invalid("task", "task name is empty")
	}
	if !taskPattern.MatchString(name) {
		return invalid("task", "invalid task name %q: use up to 200 letters, digits and _ . : / -, not starting with a symbol", name)
	}
	return nil
}

// ValidateQueueName reports whether name can name a queue.
func ValidateQueueName(name string) error {
	if knownValid(&validQueues, name) {
		return nil
	}
	if err := validateQueueName(name); err != nil {
		return err
	}
	rememberValid(&validQueues, name)
	return nil
}

func validateQueueName(name string) error {
	if name == "" {
		return invalid("Queue", "queue name is empty")
	}
	if !queuePattern.MatchString(name) {
		return invalid("Queue", "invalid queue name %q: use up to 100 letters, digits and _ . : -, not starting with a symbol", name)
	}
	return nil
}

// validateOptions checks the fields that are set; unset ones are checked
// after merging, when they have their final value.
func validateOptions(o Options) error {
	if o.Queue != "" {
		if err := ValidateQueueName(o.Queue); err != nil {
			return err
		}
	}
	if o.Priority != nil && (*o.Priority < 0 || *o.Priority > PriorityMax) {
		return invalid("Priority", "priority %d is out of range: use 0 (lowest, the default) to %d (highest)", *o.Priority, PriorityMax)
	}
	if o.Countdown < 0 {
		return invalid("Countdown", "countdown cannot be negative")
	}
	if o.Countdown != 0 && !o.ETA.IsZero() {
		return invalid("ETA", "set Countdown or ETA, not both")
	}
	if o.Expires < 0 {
		return invalid("Expires", "expires cannot be negative")
	}
	if o.Expires != 0 && !o.ExpiresAt.IsZero() {
		return invalid("ExpiresAt", "set Expires or ExpiresAt, not both")
	}
	if o.MaxRetries != nil && *o.MaxRetries < 0 {
		return invalid("MaxRetries", "max_retries cannot be negative")
	}
	for field, d := range map[string]int64{"RetryDelay": int64(o.RetryDelay), "TimeLimit": int64(o.TimeLimit), "SoftTimeLimit": int64(o.SoftTimeLimit)} {
		if d < 0 {
			return invalid(field, "%s cannot be negative", field)
		}
	}
	if o.TimeLimit > 0 && o.SoftTimeLimit > o.TimeLimit {
		return invalid("SoftTimeLimit", "soft time limit %s is longer than the hard limit %s", o.SoftTimeLimit, o.TimeLimit)
	}
	if len(o.Headers) > 0 {
		// Only what PostgreSQL refuses; prepare reports other encoding errors.
		if b, err := json.Marshal(o.Headers); err == nil {
			if why := jsonbRefusal(b); why != "" {
				return invalid("Headers", "headers %s", why)
			}
		}
	}
	if o.UniqueKey != "" && len(o.UniqueKey) > 255 {
		return invalid("UniqueKey", "unique key is %d bytes long; the limit is 255", len(o.UniqueKey))
	}
	return nil
}

// jsonbRefusal says why PostgreSQL's jsonb would refuse a JSON text that
// encoding/json accepts, or returns "" when it would not: jsonb wants valid
// UTF-8 without NUL characters (\u0000) or unpaired UTF-16 surrogates.
// Checking here keeps such args an ErrInvalid instead of an error from the
// database that aborts the caller's transaction.
func jsonbRefusal(b []byte) string {
	if !utf8.Valid(b) {
		return "is not valid UTF-8"
	}
	// In a valid JSON text every backslash starts an escape in a string.
	for i := bytes.IndexByte(b, '\\'); i >= 0 && i+1 < len(b); {
		if b[i+1] == 'u' && i+6 <= len(b) {
			r, _ := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
			switch {
			case r == 0:
				return `holds a NUL character (\u0000), which PostgreSQL cannot store`
			case 0xd800 <= r && r < 0xdc00: // a high surrogate needs a low one next
				if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
					if lo, _ := strconv.ParseUint(string(b[i+8:i+12]), 16, 16); 0xdc00 <= lo && lo < 0xe000 {
						i += 6
						break
					}
				}
				return "holds an unpaired UTF-16 surrogate, which PostgreSQL refuses"
			case 0xdc00 <= r && r < 0xe000:
				return "holds an unpaired UTF-16 surrogate, which PostgreSQL refuses"
			}
		}
		next := bytes.IndexByte(b[i+2:], '\\')
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return ""
}
