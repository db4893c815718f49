package periodic

import "errors"

// ErrInvalid is matched (errors.Is) by every error about a bad periodic
// task definition: a bad name, spec, time zone, task or option.
var ErrInvalid = errors.New("invalid periodic task")

// ErrNotFound is returned for a periodic task name that has no row.
var ErrNotFound = errors.New("no such periodic task")

// ErrExists is returned by Client.Add for a name that is taken.
var ErrExists = errors.New("periodic task already exists")

// ErrDefinedInCode is returned by Client.Remove for a task that a
// program defines in code: the program's beat would bring it back.
var ErrDefinedInCode = errors.New("periodic task is defined in code")

// ValidationError says which field of an Entry is wrong and why.
type ValidationError struct {
	// Entry is the name of the entry, when known.
	Entry string
	// Field is the Go field at fault, such as "Schedule" or "TimeZone".
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Entry != "" {
		return "periodic task " + quote(e.Entry) + ": " + e.Field + ": " + e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is makes ValidationErrors match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func quote(s string) string { return "\"" + s + "\"" }
